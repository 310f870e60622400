"""The patient list: search by name, MRN or birth date, paging, and recently opened patients."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def names(response) -> list[str]:
    return [row.sorted_name for row in response.context["results"].rows]


@pytest.mark.parametrize(
    ("_case", "query", "expected", "matched_by"),
    [
        ("family name", "Smith", ["SMITH, Anna"], "name"),
        ("given name prefix", "Ann", ["SMITH, Anna"], "name"),
        ("MRN", "MRN100001", ["SMITH, Anna"], "MRN"),
        ("birth date", "1961-04-12", ["SMITH, Anna"], "birth date"),
        ("birth year", "1961", ["SMITH, Anna"], "birth date"),
        ("other patient by MRN", "MRN200003", ["P03, Test"], "MRN"),
        ("nothing", "Zzyzx", [], "name"),
    ],
)
def test_search(doc_client, chart_data, many_patients, _case, query, expected, matched_by):
    response = doc_client.get(reverse("ehr:patient-list"), {"q": query})
    assert response.status_code == 200
    assert names(response) == expected
    assert response.context["results"].matched_by == matched_by


def test_list_pages_twenty_at_a_time_sorted_by_name(doc_client, chart_data, many_patients):
    # given 26 patients
    first = doc_client.get(reverse("ehr:patient-list"))
    second = doc_client.get(reverse("ehr:patient-list"), {"page": 2})
    # then page 1 has 20 in family-name order and page 2 the other 6
    assert first.context["results"].total == 26
    assert names(first)[:3] == ["P00, Test", "P01, Test", "P02, Test"]
    assert len(names(first)) == 20
    assert names(second) == ["P20, Test", "P21, Test", "P22, Test", "P23, Test", "P24, Test", "SMITH, Anna"]
    assert 'rel="next"' in first.content.decode()
    assert 'rel="prev"' in second.content.decode()


def test_search_results_page_too(doc_client, many_patients):
    response = doc_client.get(reverse("ehr:patient-list"), {"q": "1990-01", "page": 2})
    assert response.context["results"].total == 25
    assert names(response) == ["P20, Test", "P21, Test", "P22, Test", "P23, Test", "P24, Test"]


def test_row_shows_mrn_birth_date_age_and_sex(doc_client, chart_data):
    html = doc_client.get(reverse("ehr:patient-list"), {"q": "Smith"}).content.decode()
    assert "MRN100001" in html
    assert "1961-04-12" in html
    assert "Female" in html
    assert reverse("ehr:chart", args=["pat-a"]) in html


def test_recently_opened_patients_are_remembered_per_session(doc_client, chart_data, many_patients):
    # when the clinician opens two charts
    doc_client.get(reverse("ehr:chart", args=["pat-3"]))
    doc_client.get(reverse("ehr:chart", args=["pat-a"]))
    # then the list offers them, most recent first
    recent = doc_client.get(reverse("ehr:patient-list")).context["recent"]
    assert [p.id for p in recent] == ["pat-a", "pat-3"]


def test_bad_page_number_is_ignored(doc_client, chart_data):
    response = doc_client.get(reverse("ehr:patient-list"), {"page": "abc"})
    assert response.status_code == 200
    assert names(response) == ["SMITH, Anna"]
