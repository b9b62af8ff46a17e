// "More like this, but…": a box under each search result that asks a composed query.
// Submitting it loads the page with ?like=<that video>&q=<the change>; search.js sends
// like (the form's data-like) with the query.
(function () {
  "use strict";

  const results = document.getElementById("results");
  if (!results) return;

  function box(videoId, title) {
    const form = document.createElement("form");
    form.className = "compose";
    form.method = "get";
    form.setAttribute("role", "search");
    const like = Object.assign(document.createElement("input"),
      { type: "hidden", name: "like", value: videoId });
    const change = Object.assign(document.createElement("input"), {
      type: "search", name: "q", required: true, maxLength: 500, autocomplete: "off",
      placeholder: "More like this, but…",
    });
    change.setAttribute("aria-label", "More like " + title + ", but…");
    const go = Object.assign(document.createElement("button"), { type: "submit",
      textContent: "Go" });
    form.append(like, change, go);
    return form;
  }

  function addBoxes() {
    for (const item of results.querySelectorAll("li.result[data-video-id]")) {
      if (item.querySelector("form.compose")) continue;
      const title = (item.querySelector(".title") || {}).textContent || "this video";
      (item.lastElementChild || item).append(box(item.dataset.videoId, title));
    }
  }

  new MutationObserver(addBoxes).observe(results, { childList: true });
  addBoxes();
})();
