/* The settings page's "Use my location": fills home latitude and longitude from the browser's
 * geolocation (asked only on the click; nothing is sent until the form is saved). */
(function () {
  "use strict";

  var button = document.querySelector("[data-use-location]");
  if (!button || !("geolocation" in navigator)) return;
  var status = document.querySelector("[data-location-status]");
  var latitude = document.getElementById("id_home_latitude");
  var longitude = document.getElementById("id_home_longitude");
  if (!latitude || !longitude) return;
  button.hidden = false;

  button.addEventListener("click", function () {
    button.disabled = true;
    status.textContent = "Finding your location…";
    navigator.geolocation.getCurrentPosition(
      function (position) {
        latitude.value = position.coords.latitude.toFixed(6);
        longitude.value = position.coords.longitude.toFixed(6);
        status.textContent = "Location filled in: save the settings to keep it.";
        button.disabled = false;
      },
      function (error) {
        status.textContent = error.code === error.PERMISSION_DENIED
          ? "Location is blocked for this site in your browser's settings."
          : "Your location could not be found.";
        button.disabled = false;
      },
      { enableHighAccuracy: false, timeout: 15000, maximumAge: 600000 }
    );
  });
})();
