/* The sample SMART app: finish authorization, read the patient and their vital signs, plot them, write one. */
(function () {
  "use strict";

  var VITALS = [
    { key: "bp", label: "Blood pressure", codes: ["85354-9"], unit: "mmHg",
      series: [{ name: "Systolic", component: "8480-6" }, { name: "Diastolic", component: "8462-4" }] },
    { key: "hr", label: "Heart rate", codes: ["8867-4"], unit: "/min", series: [{ name: "Heart rate" }] },
    { key: "weight", label: "Weight", codes: ["29463-7"], unit: "kg", series: [{ name: "Weight" }] },
    { key: "bmi", label: "BMI", codes: ["39156-5"], unit: "kg/m2", series: [{ name: "BMI" }] },
    { key: "temp", label: "Temperature", codes: ["8310-5"], unit: "°C", series: [{ name: "Temperature" }] },
    { key: "spo2", label: "SpO2", codes: ["59408-5", "2708-6"], unit: "%", series: [{ name: "SpO2" }] }
  ];
  var COLORS = ["#7c3aed", "#c2410c"];
  var SVG = "http://www.w3.org/2000/svg";
  var HIDDEN_TOKEN_FIELDS = ["access_token", "refresh_token", "id_token"];

  function $(id) { return document.getElementById(id); }

  function setStatus(element, text, isError) {
    element.textContent = text;
    element.className = "status" + (isError ? " error" : "");
    element.hidden = !text;
  }

  function describeError(what, error) {
    var status = error && error.status;
    if (status === 401 || status === 403) {
      return what + ": access refused by the EHR (" + status + "). The app was not allowed this data.";
    }
    return what + ": " + (status ? "HTTP " + status + " – " : "") + ((error && error.message) || error);
  }

  function codes(concept) {
    return ((concept && concept.coding) || []).map(function (c) { return c.code; });
  }

  function hasCode(concept, wanted) {
    return codes(concept).some(function (code) { return wanted.indexOf(code) !== -1; });
  }

  function humanName(patient) {
    var names = patient.name || [];
    var name = names.filter(function (n) { return n.use === "official"; })[0] || names[0] || {};
    return name.text || [].concat(name.given || [], name.family || []).join(" ") || "(no name)";
  }

  function valueOf(observation, component) {
    if (!component) {
      return observation.valueQuantity ? observation.valueQuantity.value : null;
    }
    var part = (observation.component || []).filter(function (c) { return hasCode(c.code, [component]); })[0];
    return part && part.valueQuantity ? part.valueQuantity.value : null;
  }

  function plot(vital, points) {
    var width = 320, height = 130, pad = 28;
    var values = [];
    points.forEach(function (p) { p.values.forEach(function (v) { if (v !== null) { values.push(v); } }); });
    var min = Math.min.apply(null, values), max = Math.max.apply(null, values);
    if (min === max) { min -= 1; max += 1; }
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", vital.label + " trend");
    function x(i) { return pad + (points.length === 1 ? (width - 2 * pad) / 2 : i * (width - 2 * pad) / (points.length - 1)); }
    function y(v) { return height - pad / 2 - (v - min) * (height - pad) / (max - min); }
    [[min, y(min)], [max, y(max)]].forEach(function (tick) {
      var label = document.createElementNS(SVG, "text");
      label.setAttribute("x", "2");
      label.setAttribute("y", String(tick[1] + 4));
      label.setAttribute("class", "axis");
      label.textContent = Math.round(tick[0] * 10) / 10;
      svg.appendChild(label);
    });
    vital.series.forEach(function (series, s) {
      var coords = [];
      points.forEach(function (p, i) {
        if (p.values[s] !== null) { coords.push(x(i).toFixed(1) + "," + y(p.values[s]).toFixed(1)); }
      });
      var line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", coords.join(" "));
      line.setAttribute("fill", "none");
      line.setAttribute("stroke", COLORS[s % COLORS.length]);
      line.setAttribute("stroke-width", "2");
      svg.appendChild(line);
      coords.forEach(function (pair) {
        var dot = document.createElementNS(SVG, "circle");
        var xy = pair.split(",");
        dot.setAttribute("cx", xy[0]);
        dot.setAttribute("cy", xy[1]);
        dot.setAttribute("r", "2.5");
        dot.setAttribute("fill", COLORS[s % COLORS.length]);
        svg.appendChild(dot);
      });
    });
    return svg;
  }

  function showVitals(observations) {
    var plots = $("plots"), latest = $("latest");
    plots.textContent = "";
    latest.textContent = "";
    var sorted = observations.slice().sort(function (a, b) {
      return String(a.effectiveDateTime).localeCompare(String(b.effectiveDateTime));
    });
    VITALS.forEach(function (vital) {
      var points = sorted.filter(function (o) { return hasCode(o.code, vital.codes); }).map(function (o) {
        return { when: o.effectiveDateTime, values: vital.series.map(function (s) { return valueOf(o, s.component); }) };
      }).filter(function (p) { return p.values.some(function (v) { return v !== null; }); });
      if (!points.length) { return; }
      var figure = document.createElement("figure");
      figure.className = "plot";
      figure.setAttribute("data-vital", vital.key);
      var caption = document.createElement("figcaption");
      caption.textContent = vital.label + " (" + vital.unit + ")";
      figure.appendChild(caption);
      figure.appendChild(plot(vital, points.slice(-30)));
      plots.appendChild(figure);
      var last = points[points.length - 1];
      var row = document.createElement("tr");
      row.setAttribute("data-vital", vital.key);
      [vital.label, last.values.join("/") + " " + vital.unit, String(last.when || "").slice(0, 16).replace("T", " ")]
        .forEach(function (text) { var cell = document.createElement("td"); cell.textContent = text; row.appendChild(cell); });
      latest.appendChild(row);
    });
    $("latest-table").hidden = !latest.children.length;
    if (!plots.children.length) {
      setStatus($("vitals-error"), "No vital signs recorded for this patient.", false);
    }
  }

  function loadVitals(client) {
    setStatus($("vitals-error"), "", false);
    return client.request("Observation?patient=" + encodeURIComponent(client.patient.id) +
                          "&category=vital-signs&_sort=-date&_count=200", { pageLimit: 1, flat: true })
      .then(showVitals)
      .catch(function (error) {
        $("plots").textContent = "";
        setStatus($("vitals-error"), describeError("Vital signs", error), true);
      });
  }

  function heartRate(client, value) {
    return {
      resourceType: "Observation",
      status: "final",
      category: [{ coding: [{ system: "http://terminology.hl7.org/CodeSystem/observation-category",
                              code: "vital-signs", display: "Vital Signs" }] }],
      code: { coding: [{ system: "http://loinc.org", code: "8867-4", display: "Heart rate" }], text: "Heart rate" },
      subject: { reference: "Patient/" + client.patient.id },
      effectiveDateTime: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
      valueQuantity: { value: value, unit: "beats/minute", system: "http://unitsofmeasure.org", code: "/min" }
    };
  }

  function wireRecordForm(client) {
    $("record").hidden = false;
    $("record-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var input = $("heart-rate"), value = Number(input.value);
      if (!input.value || !(value >= 20 && value <= 250)) {
        setStatus($("record-status"), "Enter a heart rate between 20 and 250.", true);
        input.focus();
        return;
      }
      client.create(heartRate(client, Math.round(value)))
        .then(function (created) {
          setStatus($("record-status"), "Saved (Observation/" + created.id + ").", false);
          input.value = "";
          return loadVitals(client);
        })
        .catch(function (error) { setStatus($("record-status"), describeError("Saving", error), true); });
    });
  }

  function showContext(client) {
    var response = client.state.tokenResponse || {};
    var shown = {};
    Object.keys(response).forEach(function (key) {
      if (HIDDEN_TOKEN_FIELDS.indexOf(key) === -1) { shown[key] = response[key]; }
    });
    $("context").textContent = JSON.stringify(shown, null, 2);
    $("context-box").hidden = false;
    $("server").textContent = "FHIR server: " + client.state.serverUrl;
  }

  function showPatient(client, patient) {
    var needBanner = (client.state.tokenResponse || {}).need_patient_banner !== false;
    $("patient-name").textContent = humanName(patient);
    $("patient-facts").textContent = needBanner
      ? [patient.gender, patient.birthDate && "born " + patient.birthDate].filter(Boolean).join(" · ")
      : "";
    $("patient-banner").hidden = false;
    $("patient-banner").className = "patient-banner" + (needBanner ? "" : " compact");
  }

  function start(client) {
    setStatus($("status"), "", false);
    showContext(client);
    if (!client.patient.id) {
      setStatus($("status"), "No patient was selected for this launch.", true);
      return;
    }
    $("vitals").hidden = false;
    // One request after the other: the patient's name first, then the vital signs.
    client.patient.read()
      .then(function (patient) { showPatient(client, patient); })
      .catch(function (error) { setStatus($("status"), describeError("Patient", error), true); })
      .then(function () { return loadVitals(client); });
    var granted = ((client.state.tokenResponse || {}).scope || "").split(" ");
    if (granted.indexOf("patient/Observation.c") !== -1 || granted.indexOf("patient/Observation.cruds") !== -1 ||
        granted.indexOf("patient/*.c") !== -1 || granted.indexOf("patient/Observation.write") !== -1) {
      wireRecordForm(client);
    }
  }

  window.FHIR.oauth2.ready()
    .then(start)
    .catch(function (error) {
      setStatus($("status"), "The app could not start: " + (error && error.message ? error.message : error), true);
    });
})();
