"use strict";
// Sign in: ?next=PATH says where to go after; #token=TOKEN (a fragment, which browsers never
// send to a server) signs in at once, then leaves the address bar and the history.
const query = new URLSearchParams(location.search);
const next = query.get("next") || "/";
document.getElementById("next").value = next.startsWith("/") && !next.startsWith("//") ? next : "/";
document.getElementById("failed").hidden = !query.get("failed");
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("token")) {
  history.replaceState(null, "", location.pathname + location.search);
  document.getElementById("token").value = fragment.get("token");
  document.getElementById("login").requestSubmit();
}
