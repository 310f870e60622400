"""Tests for the pure parts of `manage.py bench`: wrk's script and output, the report's ratios and targets.

No timing is asserted anywhere: these check parsing and arithmetic on fixed figures.
"""

from datetime import date

import pytest
from django.urls import NoReverseMatch, reverse

from ehr.bench import report as rep
from ehr.bench.data import home_reading, is_vital_sign, patient_with_readings
from ehr.bench.wrk import lua_script, lua_string, parse_wrk_output, wrk_command
from ehr.management.commands.bench import _argv, large_database_url

# Real wrk 4.1.0 output (a POST the server refused), with the bench script's BENCH_JSON line.
WRK_WITH_SCRIPT = """\
Running 1s test @ http://127.0.0.1:18765/
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.68ms    1.44ms   9.37ms   85.40%
    Req/Sec     1.23k   149.83     1.58k    72.73%
  Latency Distribution
     50%    1.11ms
     75%    1.92ms
     90%    3.85ms
     99%    7.17ms
  1342 requests in 1.10s, 727.35KB read
  Non-2xx or 3xx responses: 1342
Requests/sec:   1220.00
Transfer/sec:    661.23KB
BENCH_JSON {"requests": 1342, "duration_us": 1100001, "bytes": 744810, "mean_us": 1676.4, "max_us": 9371, \
"p50_us": 1107, "p90_us": 3850, "p99_us": 7174, "errors_connect": 0, "errors_read": 0, "errors_write": 0, \
"errors_status": 1342, "errors_timeout": 0}
"""

# Plain `wrk --latency` output (no script), mixed units.
WRK_TEXT_ONLY = """\
Running 10s test @ http://127.0.0.1:8000/fhir/Observation/x
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.02ms    2.10ms   1.20s    85.94%
    Req/Sec     1.10k   113.12     1.29k    70.00%
  Latency Distribution
     50%  850.00us
     75%    2.44ms
     90%    4.61ms
     99%    1.20s
  10960 requests in 10.00s, 203.36KB read
  Socket errors: connect 0, read 3, write 0, timeout 2
Requests/sec:   1095.55
Transfer/sec:    203.09KB
"""


def test_parse_prefers_the_script_json_line():
    result = parse_wrk_output(WRK_WITH_SCRIPT)
    assert result.requests == 1342
    assert result.duration_s == pytest.approx(1.100001)
    assert result.rps == pytest.approx(1342 / 1.100001)
    assert (result.p50_ms, result.p90_ms, result.p99_ms) == (1.107, 3.85, 7.174)
    assert result.non_2xx == 1342
    assert result.errors == 1342


def test_parse_falls_back_to_the_latency_text_with_units():
    result = parse_wrk_output(WRK_TEXT_ONLY)
    assert result.requests == 10960
    assert result.duration_s == 10.0
    assert result.rps == pytest.approx(1096.0)
    assert result.p50_ms == pytest.approx(0.85)
    assert result.p90_ms == pytest.approx(4.61)
    assert result.p99_ms == pytest.approx(1200.0)
    assert (result.errors, result.non_2xx) == (5, 0)


def test_parse_without_latency_distribution_is_an_error():
    text = "\n".join(line for line in WRK_TEXT_ONLY.splitlines() if "%" not in line or "Stdev" in line)
    with pytest.raises(ValueError, match="--latency"):
        parse_wrk_output(text)


def test_lua_string_survives_closing_brackets():
    assert lua_string("plain") == "[[\nplain]]"
    assert lua_string('{"a": "]]"}') == '[=[\n{"a": "]]"}]=]'
    assert lua_string("]]]=]") == "[==[\n]]]=]]==]"


def test_lua_script_sets_method_body_headers_and_reports_percentiles():
    script = lua_script(
        method="POST", body='{"resourceType": "Observation"}', headers={"Authorization": "Bearer t"}
    )
    assert "wrk.method = [[\nPOST]]" in script
    assert 'wrk.body = [[\n{"resourceType": "Observation"}]]' in script
    assert "wrk.headers[ [[\nAuthorization]] ] = [[\nBearer t]]" in script
    assert "latency:percentile(99)" in script and "BENCH_JSON" in script


def test_wrk_command_uses_one_thread_and_whole_seconds():
    command = wrk_command(wrk="wrk", url="http://x/", script_path="s.lua", duration_s=2.4, connections=8)
    assert command[:5] == ["wrk", "-t1", "-c8", "-d2s", "--latency"]
    assert command[-3:] == ["-s", "s.lua", "http://x/"]
    assert "-d1s" in wrk_command(wrk="wrk", url="u", script_path="s", duration_s=0.2, connections=1)


def case(key: str, rps: float, p50: float = 1.0) -> rep.CaseResult:
    return rep.CaseResult(
        key, key, rps=rps, p50_ms=p50, p90_ms=p50 * 2, p99_ms=p50 * 4, requests=int(rps * 10)
    )


def test_ratios_to_both_baselines():
    bare, orm, read = case(rep.BARE, 2000), case(rep.ORM, 1000), case("read", 850)
    assert rep.ratios(read, bare, orm) == {"rps_vs_bare": 0.425, "rps_vs_orm": 0.85}
    assert rep.ratios(read, None, orm)["rps_vs_bare"] is None
    assert rep.ratio(5, 0) is None


def test_read_target_pass_fail_and_not_measured():
    orm = case(rep.ORM, 1000)
    passed = rep.read_target(case("read", 800), orm)
    failed = rep.read_target(case("read", 799), orm)
    assert (passed.status, failed.status) == ("PASS", "FAIL")
    assert "80%" in passed.detail and passed.line().startswith("PASS")
    assert rep.read_target(None, orm).status == "N/A"


def test_seeding_target():
    assert rep.seeding_target(1000, 1.0).status == "PASS"
    assert rep.seeding_target(1000, 2.5).status == "FAIL"
    assert rep.seeding_target(0, 0.0).status == "N/A"
    assert "(trusted)" in rep.seeding_target(10, 1.0, what="trusted").name


def test_vitals_targets_on_postgresql_at_scale():
    absolute, scaling = rep.vitals_targets(
        small_p50_ms=4.0, large_p50_ms=5.5, small_count=10_000, large_count=1_000_000, backend="postgresql"
    )
    assert (absolute.status, scaling.status) == ("PASS", "PASS")
    assert "1.38x" in scaling.detail
    slow, grew = rep.vitals_targets(
        small_p50_ms=4.0, large_p50_ms=12.0, small_count=10_000, large_count=1_000_000, backend="postgresql"
    )
    assert (slow.status, grew.status) == ("FAIL", "FAIL")


def test_vitals_targets_elsewhere_are_not_the_targets_setting():
    absolute, scaling = rep.vitals_targets(
        small_p50_ms=4.0, large_p50_ms=5.0, small_count=10_000, large_count=1_000_000, backend="sqlite"
    )
    assert absolute.status == "N/A" and scaling.status == "PASS"
    _, small_run = rep.vitals_targets(
        small_p50_ms=4.0, large_p50_ms=5.0, small_count=10_000, large_count=50_000, backend="postgresql"
    )
    assert small_run.status == "N/A"


def test_report_table_and_json_carry_the_ratios():
    report = rep.BenchReport(
        backend="sqlite", observations=10_000,
        cases=[case(rep.BARE, 2000), case(rep.ORM, 1000), case("read", 900)],
    )  # fmt: skip
    report.targets = [rep.read_target(report.case("read"), report.case(rep.ORM))]
    table = rep.format_table(report)
    assert table.splitlines()[0].split()[:2] == ["case", "req/s"]
    assert " 0.45 " in table and " 0.90 " in table
    data = report.as_dict()
    assert data["cases"][2]["rps_vs_orm"] == pytest.approx(0.9)
    assert data["targets"][0]["status"] == "PASS"


def test_rounds_merge_takes_medians_and_sums():
    rounds = [case("read", 100, p50=2.0), case("read", 300, p50=9.0), case("read", 200, p50=3.0)]
    merged = rep.rounds_merge(rounds)
    assert (merged.rps, merged.p50_ms, merged.p99_ms) == (200, 3.0, 12.0)
    assert merged.requests == 6000 and merged.new_db_sessions is None


def test_large_database_url():
    assert large_database_url("postgres://u:p@h:5432/ehr_bench") == "postgres://u:p@h:5432/ehr_bench_1m"
    assert large_database_url("sqlite:////w/var/bench.sqlite3") == "sqlite:////w/var/bench-1m.sqlite3"


def test_child_argv_repeats_the_options():
    options = {
        "observations": 10, "per_patient": 1000, "load_jobs": 1, "rounds": 3, "duration": 1.0, "warmup": 0.5,
        "connections": 4, "server": "granian", "workers": 2, "worker_class": "gthread", "threads": 2,
        "cases": "vitals",
        "large_observations": 100, "validate": False, "explain": True, "json": True, "profile_top": 12,
    }  # fmt: skip
    argv = _argv(options, "sqlite:///x.sqlite3")
    assert argv[:2] == ["--database-url", "sqlite:///x.sqlite3"]
    assert argv[argv.index("--worker-class") + 1] == "gthread"
    assert argv[argv.index("--server") + 1] == "granian"
    assert argv[argv.index("--profile-top") + 1] == "12"
    assert "--explain" in argv and "--json" in argv and "--validate" not in argv


def test_baseline_routes_exist_only_in_the_bench_urlconf():
    with pytest.raises(NoReverseMatch):
        reverse("bench:bare", args=["Observation", "x"])
    assert (
        reverse("bench:orm", args=["Observation", "x"], urlconf="ehr.bench.urls")
        == "/bench/orm/Observation/x"
    )


def test_home_reading_is_an_earlier_copy_without_encounter():
    visit = {
        "resourceType": "Observation", "id": "obs-3-7", "status": "final",
        "category": [{"coding": [{"code": "vital-signs"}]}], "encounter": {"reference": "Encounter/enc-3-1"},
        "effectiveDateTime": "2024-05-01T10:00:00-04:00",
    }  # fmt: skip
    reading = home_reading(visit, days_before=2)
    assert reading["id"] == "obs-3-7-h2" and "encounter" not in reading
    assert reading["effectiveDateTime"] == "2024-04-29T10:00:00-04:00"
    assert visit["id"] == "obs-3-7" and "encounter" in visit  # the visit's own resource is untouched
    assert is_vital_sign(reading) and not is_vital_sign({"category": [{"coding": [{"code": "laboratory"}]}]})


def test_patient_with_readings_reaches_the_density_with_unique_ids():
    resources = patient_with_readings(0, today=date(2026, 1, 1), per_patient=400)
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    assert len(observations) == 400
    assert len({r["id"] for r in resources}) == len(resources)
