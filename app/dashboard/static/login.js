// Sign-in page: the key is checked by the service and kept as an HttpOnly session cookie.
import { problem } from "./common.js";

const form = document.getElementById("login-form");
const error = document.getElementById("login-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const key = form.elements.namedItem("key").value;
  const response = await fetch("/dashboard/api/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ key }),
  });
  if (response.ok) {
    window.location.assign(form.dataset.next || "/dashboard/live");
    return;
  }
  error.textContent = response.status === 422 ? "Enter an API key." : await problem(response);
  error.hidden = false;
  form.elements.namedItem("key").focus();
});
