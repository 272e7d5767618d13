// tagtrail dashboard: when the controller says something changed, fetch this page again and swap <main>.
// No framework and no build step; the page works without it (reload to see changes).
(() => {
  if (!document.body.dataset.live || !window.EventSource) return;
  let refreshing = false;
  const refresh = async () => {
    if (refreshing || document.querySelector("main input:focus")) return;
    refreshing = true;
    try {
      const url = new URL(location.href);
      url.searchParams.delete("flash");
      url.searchParams.delete("error");
      const response = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const selector of ["#main", ".health"]) {
        const fresh = page.querySelector(selector);
        const old = document.querySelector(selector);
        if (fresh && old) old.replaceWith(fresh);
      }
      document.body.dataset.refreshed = String(Date.now());
    } finally {
      refreshing = false;
    }
  };
  const events = new EventSource("/events");
  events.addEventListener("changed", refresh);
})();
