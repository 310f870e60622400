/* Starts the SMART authorization: an EHR launch (`launch` given) or a standalone patient launch. */
(function () {
  "use strict";
  var params = new URLSearchParams(window.location.search);
  var clientId = params.get("client_id") || "sample-smart-app";
  var clinical = "patient/Patient.rs patient/Observation.rs patient/Observation.c";
  // EHR launch: the EHR hands over its patient with `launch`; standalone: ask the user to pick one (launch/patient).
  var scope = (params.has("launch") ? "launch" : "launch/patient") + " openid fhirUser online_access " + clinical;
  var status = document.getElementById("status");
  if (!params.get("iss")) {
    status.textContent = "Open this app from your EHR or portal (the launch URL has no iss parameter).";
    status.className = "status error";
    return;
  }
  window.FHIR.oauth2.authorize({
    clientId: clientId,
    scope: scope,
    redirectUri: "index.html",
    pkceMode: "required",
    completeInTarget: true
  }).catch(function (error) {
    status.textContent = "Could not start the app: " + error.message;
    status.className = "status error";
  });
})();
