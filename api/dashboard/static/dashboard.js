// The dashboard's only script: live parts re-fetch their HTML; forms that change a
// campaign ask for confirmation first. No framework, no build step.
"use strict";

function refresh(el) {
  const url = el.dataset.refresh;
  const every = parseInt(el.dataset.every || "2000", 10);
  const tick = async () => {
    try {
      const res = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (res.redirected || res.status === 401) { window.location.reload(); return; }
      if (res.ok) { el.innerHTML = await res.text(); }
    } catch (e) { /* the next tick tries again */ }
    setTimeout(tick, every);
  };
  setTimeout(tick, every);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh]").forEach(refresh);
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (ev) => {
      if (!window.confirm(form.dataset.confirm)) { ev.preventDefault(); }
    });
  });
});
