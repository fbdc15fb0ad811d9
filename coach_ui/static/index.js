"use strict";
// The index page's agent form (a script file: the CSP allows no inline handlers).
document.getElementById("open-agent").addEventListener("submit", (e) => {
  e.preventDefault();
  location.href = "/agent/" + encodeURIComponent(e.target.agent.value);
});
