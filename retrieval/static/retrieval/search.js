// Search page: query /api/search, list videos with their moments, play a moment on click.
(function () {
  "use strict";

  const form = document.getElementById("search-form");
  const input = document.getElementById("q");
  const results = document.getElementById("results");
  const status = document.getElementById("status");
  const player = document.getElementById("player");
  const nowPlaying = document.getElementById("now-playing");

  function clock(seconds) {
    const whole = Math.max(0, Math.floor(seconds));
    return Math.floor(whole / 60) + ":" + String(whole % 60).padStart(2, "0");
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, value);
    }
    node.append(...children.filter((child) => child !== null && child !== undefined));
    return node;
  }

  function thumbnail(result) {
    const start = result.moments.length ? result.moments[0].start : 0;
    const button = el("button", {
      type: "button", class: "thumb moment-link", "data-url": result.url,
      "data-start": start, "data-title": result.title,
      "aria-label": "Play " + result.title,
    });
    if (result.thumbnail) {
      button.append(el("img", { src: result.thumbnail, alt: "", loading: "lazy" }));
    } else {
      button.textContent = (result.title || "?").trim().charAt(0).toUpperCase();
    }
    return button;
  }

  // The snippet as text nodes, with each highlighted [start, end) span (offsets in code
  // points) in a <mark>: the text is never parsed as HTML.
  function marked(snippet, highlights) {
    const chars = Array.from(snippet);
    const part = (from, to) => chars.slice(from, to).join("");
    const node = el("span", { class: "snippet" });
    let at = 0;
    for (const [start, end] of highlights || []) {
      if (start < at || end <= start || end > chars.length) continue;
      node.append(part(at, start), el("mark", {}, part(start, end)));
      at = end;
    }
    node.append(part(at));
    return node;
  }

  function moment(result, item) {
    return el("li", {},
      el("button", {
        type: "button", class: "moment moment-link", "data-url": result.url,
        "data-start": item.start, "data-title": result.title,
      },
      el("time", {}, clock(item.start)),
      el("span", { class: "kind" }, item.kind),
      marked(item.snippet, item.highlights)));
  }

  // Low-tier moments (the search is not sure they answer the query) are hidden; a video
  // whose moments are all low keeps its best one, so there is still somewhere to start.
  function shownMoments(result) {
    const sure = result.moments.filter((item) => item.tier !== "low");
    return sure.length ? sure : result.moments.slice(0, 1);
  }

  function card(result) {
    const meta = [result.duration ? clock(result.duration) : null,
      (result.tags || []).join(", ") || null, result.tier ? result.tier + " match" : null]
      .filter(Boolean).join(" · ");
    return el("li", { class: "result", "data-video-id": result.id },
      thumbnail(result),
      el("div", {},
        el("h2", { class: "title" }, result.title),
        el("p", { class: "meta" }, meta),
        el("ol", { class: "moments" },
          ...shownMoments(result).map((item) => moment(result, item)))));
  }

  async function runSearch(query) {
    status.textContent = "Searching…";
    results.replaceChildren();
    const url = form.dataset.api + "?" + new URLSearchParams({ q: query, k: "10" });
    let response;
    try {
      response = await fetch(url, { headers: { Accept: "application/json" } });
    } catch (error) {
      status.textContent = "The search service cannot be reached.";
      return;
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      status.textContent = data.error || "Search failed (" + response.status + ").";
      return;
    }
    status.textContent = data.total === 1 ? "1 video" : data.total + " videos";
    if (!data.total) status.textContent = "No video matches “" + query + "”.";
    results.replaceChildren(...data.results.map(card));
    history.replaceState(null, "", "?" + new URLSearchParams({ q: query }));
  }

  function play(url, start, title) {
    nowPlaying.textContent = title + " — from " + clock(start);
    const seek = () => {
      player.currentTime = start;
      player.play().catch(() => {});  // autoplay may be refused; the position is kept
    };
    if (player.dataset.src !== url) {
      player.dataset.src = url;
      player.src = url;
      player.addEventListener("loadedmetadata", seek, { once: true });
      player.load();
    } else if (player.readyState >= HTMLMediaElement.HAVE_METADATA) {
      seek();
    } else {
      player.addEventListener("loadedmetadata", seek, { once: true });
    }
  }

  results.addEventListener("click", (event) => {
    const button = event.target.closest(".moment-link");
    if (button && button.dataset.url) {
      play(button.dataset.url, Number(button.dataset.start) || 0, button.dataset.title);
    }
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = input.value.trim();
    if (query) runSearch(query);
  });

  if (input.value.trim()) runSearch(input.value.trim());
})();
