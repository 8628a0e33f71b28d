// lagwatch status page: live filtering and self-refresh without reloading the page. Every fragment swapped in
// is HTML that lagwatch rendered and escaped on the server; this script never builds markup from data. Without
// JavaScript the page works as plain links and a GET form.
"use strict";
(() => {
  const main = document.getElementById("content");
  const form = document.getElementById("filters");
  const state = document.getElementById("refresh-state");
  const updated = document.getElementById("updated");
  const every = Number(document.body.dataset.refresh || 0);
  let pending = null;
  let typing = null;

  const fragmentUrl = (url) => {
    const u = new URL(url, location.href);
    u.searchParams.set("fragment", "1");
    return u;
  };

  // After a swap, focus goes back to the link or control it was on (same href or id), so keyboard users keep
  // their place while the page refreshes itself.
  const focusKey = () => {
    const active = document.activeElement;
    if (!active || !main.contains(active)) return null;
    if (active.id) return `#${CSS.escape(active.id)}`;
    const href = active.getAttribute("href");
    return href === null ? null : `a[href="${CSS.escape(href)}"]`;
  };

  async function load(url, replaceHistory) {
    if (pending) pending.abort();
    pending = new AbortController();
    try {
      const response = await fetch(fragmentUrl(url), {
        signal: pending.signal,
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const html = await response.text();
      const key = focusKey();
      main.innerHTML = html;
      if (key) {
        const again = main.querySelector(key);
        if (again) again.focus();
      }
      if (replaceHistory) history.replaceState(null, "", new URL(url, location.href));
      if (updated) {
        const now = new Date();
        updated.dateTime = now.toISOString();
        updated.textContent = now.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
      }
      if (state) state.textContent = "";
    } catch (error) {
      if (error.name === "AbortError") return;
      if (state) state.textContent = `(last update failed: ${error.message}; retrying)`;
    }
  }

  const formUrl = () => {
    const params = new URLSearchParams(new FormData(form));
    const query = params.toString();
    return location.pathname + (query ? `?${query}` : "");
  };

  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      load(formUrl(), true);
    });
    form.addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => load(formUrl(), true), 200);
    });
  }

  main.addEventListener("click", (event) => {
    const link = event.target.closest(".pager a");
    if (!link) return;
    event.preventDefault();
    load(link.href, true).then(() => main.focus());
  });

  if (every > 0) {
    setInterval(() => {
      if (!document.hidden) load(location.href, false);
    }, every * 1000);
  }
})();
