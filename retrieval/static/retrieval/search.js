// Search page: query /api/search as the user types, list videos with their moments
// (matched words marked), offer the response's facets as filters, play a moment on click
// or Enter, and show the playing video's chapters and subtitles under the player.
(function () {
  "use strict";

  const DEBOUNCE_MS = 250;
  const MIN_CHARS = 2;
  // A facet of the response and the /api/search parameter its values filter on.
  const FACET_PARAMS = { tags: "tags", language: "language", kind: "kinds" };
  const FACET_LABELS = { tags: "Tags", language: "Language", kind: "Kind" };

  const form = document.getElementById("search-form");
  const input = document.getElementById("q");
  const results = document.getElementById("results");
  const status = document.getElementById("status");
  const player = document.getElementById("player");
  const nowPlaying = document.getElementById("now-playing");
  const facetsNav = document.getElementById("facets");
  const facetGroups = document.getElementById("facet-groups");
  const chaptersNav = document.getElementById("chapters-nav");
  const chapterList = document.getElementById("chapters");

  const filters = {};  // parameter -> [values], e.g. { tags: ["geology"] }
  let timer = null;
  let inFlight = null;
  let latest = 0;
  let playingVideo = null;

  function clock(seconds) {
    const whole = Math.max(0, Math.floor(seconds));
    return Math.floor(whole / 60) + ":" + String(whole % 60).padStart(2, "0");
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
    }
    node.append(...children.filter((child) => child !== null && child !== undefined));
    return node;
  }

  // -- highlighted snippets ---------------------------------------------------------------

  // Offsets count characters (code points) of the snippet: [[start, end], ...] or
  // [{start, end}, ...]. Text goes in as text nodes, so nothing in a snippet is markup.
  function spans(highlights, length) {
    const pairs = (highlights || []).map((h) => (Array.isArray(h) ? h : [h.start, h.end]))
      .map(([a, b]) => [Math.max(0, Number(a)), Math.min(length, Number(b))])
      .filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b) && b > a)
      .sort((x, y) => x[0] - y[0]);
    const merged = [];
    for (const pair of pairs) {
      const last = merged[merged.length - 1];
      if (last && pair[0] <= last[1]) last[1] = Math.max(last[1], pair[1]);
      else merged.push(pair.slice());
    }
    return merged;
  }

  function snippet(item) {
    const chars = Array.from(item.snippet || "");
    const node = el("span", { class: "snippet" });
    let at = 0;
    for (const [start, end] of spans(item.highlights, chars.length)) {
      node.append(chars.slice(at, start).join(""), el("mark", {}, chars.slice(start, end).join("")));
      at = end;
    }
    node.append(chars.slice(at).join(""));
    return node;
  }

  // -- results ------------------------------------------------------------------------------

  function thumbnail(result) {
    const start = result.moments.length ? result.moments[0].start : 0;
    const button = el("button", {
      type: "button", class: "thumb moment-link", "data-url": result.url,
      "data-start": start, "data-title": result.title, "data-video": result.id,
      "aria-label": "Play " + result.title, tabindex: "-1",
    });
    if (result.thumbnail) {
      button.append(el("img", { src: result.thumbnail, alt: "", loading: "lazy" }));
    } else {
      button.textContent = (result.title || "?").trim().charAt(0).toUpperCase();
    }
    return button;
  }

  function moment(result, item) {
    return el("li", {},
      el("button", {
        type: "button", class: "moment moment-link", "data-url": result.url,
        "data-start": item.start, "data-title": result.title, "data-video": result.id,
      },
      el("time", {}, clock(item.start)),
      el("span", { class: "kind" }, item.kind),
      snippet(item)));
  }

  // Low-tier moments (the search is not sure they answer the query) are hidden; a video
  // whose moments are all low keeps its best one, so there is still somewhere to start.
  function shownMoments(result) {
    const sure = result.moments.filter((item) => item.tier !== "low");
    return sure.length ? sure : result.moments.slice(0, 1);
  }

  function card(result, index) {
    const meta = [result.duration ? clock(result.duration) : null,
      (result.tags || []).join(", ") || null, result.tier ? result.tier + " match" : null]
      .filter(Boolean).join(" · ");
    const heading = "result-title-" + index;
    return el("li", { class: "result", "data-video-id": result.id, tabindex: "-1",
      "aria-labelledby": heading },
    thumbnail(result),
    el("div", {},
      el("h2", { class: "title", id: heading }, result.title),
      el("p", { class: "meta" }, meta),
      el("ol", { class: "moments", "aria-label": "Moments" },
        ...shownMoments(result).map((item) => moment(result, item)))));
  }

  // -- facets -----------------------------------------------------------------------------

  function facetButton(name, bucket) {
    const param = FACET_PARAMS[name];
    const value = String(bucket.value);
    const active = (filters[param] || []).includes(value);
    const count = bucket.count === null || bucket.count === undefined ? null
      : el("span", { class: "count" }, String(bucket.count));
    return el("li", {}, el("button", {
      type: "button", class: "facet", "data-param": param, "data-value": value,
      "aria-pressed": active ? "true" : "false",
    }, el("span", { class: "facet-value" }, value), count));
  }

  // The response's buckets, plus any active filter value it has none for (so it can
  // always be turned off again).
  function facetBuckets(name, facets) {
    const buckets = Array.isArray(facets[name]) ? facets[name].slice() : [];
    for (const value of filters[FACET_PARAMS[name]] || []) {
      if (!buckets.some((bucket) => String(bucket.value) === value)) {
        buckets.unshift({ value: value, count: null });
      }
    }
    return buckets;
  }

  function renderFacets(facets) {
    const groups = Object.keys(FACET_PARAMS)
      .map((name) => [name, facetBuckets(name, facets || {})])
      .filter(([, buckets]) => buckets.length);
    facetGroups.replaceChildren(...groups.map(([name, buckets]) => {
      const id = "facet-" + name;
      return el("section", { class: "facet-group", "aria-labelledby": id },
        el("h3", { id: id }, FACET_LABELS[name]),
        el("ul", {}, ...buckets.map((bucket) => facetButton(name, bucket))));
    }));
    facetsNav.hidden = !groups.length;
  }

  function toggleFilter(param, value) {
    const values = filters[param] || [];
    filters[param] = values.includes(value) ? values.filter((v) => v !== value) : [...values, value];
    if (!filters[param].length) delete filters[param];
    search(input.value.trim());
  }

  // -- searching --------------------------------------------------------------------------

  function searchParams(query) {
    const params = new URLSearchParams({ q: query });
    if (form.dataset.like) params.set("like", form.dataset.like);  // see compose.js
    for (const [param, values] of Object.entries(filters)) params.set(param, values.join(","));
    return params;
  }

  function showResults(data, query) {
    status.textContent = data.total === 1 ? "1 video" : data.total + " videos";
    if (!data.total) status.textContent = "No video matches “" + query + "”.";
    results.replaceChildren(...data.results.map(card));
    renderFacets(data.facets);
  }

  async function search(query) {
    if (!query) return;
    const ticket = ++latest;
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    status.textContent = "Searching…";
    const params = searchParams(query);
    params.set("k", "10");
    if (form.dataset.facets) params.set("facets", form.dataset.facets);
    let response;
    try {
      response = await fetch(form.dataset.api + "?" + params,
        { headers: { Accept: "application/json" }, signal: inFlight.signal });
    } catch (error) {
      if (ticket === latest) status.textContent = "The search service cannot be reached.";
      return;
    }
    const data = await response.json().catch(() => ({}));
    if (ticket !== latest) return;  // a newer query was typed meanwhile
    if (!response.ok) {
      status.textContent = data.error || "Search failed (" + response.status + ").";
      return;
    }
    showResults(data, query);
    history.replaceState(null, "", "?" + searchParams(query));
  }

  function searchSoon() {
    clearTimeout(timer);
    const query = input.value.trim();
    if (query.length < MIN_CHARS) return;
    timer = setTimeout(() => search(query), DEBOUNCE_MS);
  }

  // -- player, chapters and subtitles -----------------------------------------------------

  function seekTo(start) {
    const seek = () => {
      player.currentTime = start;
      player.play().catch(() => {});  // autoplay may be refused; the position is kept
    };
    if (player.readyState >= HTMLMediaElement.HAVE_METADATA) seek();
    else player.addEventListener("loadedmetadata", seek, { once: true });
  }

  function play(url, start, title, videoId) {
    nowPlaying.textContent = title + " — from " + clock(start);
    if (player.dataset.src !== url) {
      player.dataset.src = url;
      player.pause();
      player.querySelectorAll("track").forEach((track) => track.remove());
      player.src = url;
      player.load();
      loadVideoDetails(videoId);
    }
    seekTo(start);
  }

  async function loadVideoDetails(videoId) {
    playingVideo = videoId;
    chapterList.replaceChildren();
    chaptersNav.hidden = true;
    if (!videoId) return;
    let detail;
    try {
      const response = await fetch(form.dataset.videos + "/" + encodeURIComponent(videoId),
        { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      detail = await response.json();
    } catch (error) {
      return;
    }
    if (playingVideo !== videoId) return;
    showChapters(detail.chapters || []);
    if (detail.subtitles && detail.subtitles.vtt) addSubtitles(detail.subtitles.vtt, detail.language);
  }

  function showChapters(chapters) {
    chapterList.replaceChildren(...chapters.map((chapter) => el("li", {},
      el("button", { type: "button", class: "chapter", "data-start": chapter.start },
        el("time", {}, clock(chapter.start)), " ", el("span", {}, chapter.title)))));
    chaptersNav.hidden = !chapters.length;
    markChapter();
  }

  function markChapter() {
    const buttons = Array.from(chapterList.querySelectorAll(".chapter"));
    const now = player.currentTime || 0;
    const current = buttons.filter((b) => Number(b.dataset.start) <= now + 0.05).pop();
    buttons.forEach((b) => (b === current ? b.setAttribute("aria-current", "true")
      : b.removeAttribute("aria-current")));
  }

  function addSubtitles(src, language) {
    const track = el("track", { kind: "subtitles", src: src, srclang: language || "en",
      label: "Transcript", default: "" });
    player.append(track);
    track.track.mode = "showing";
  }

  // -- keyboard navigation ----------------------------------------------------------------

  function items() {
    return Array.from(results.querySelectorAll(".result"));
  }

  function focusItem(index) {
    const list = items();
    if (!list.length) return;
    list[Math.max(0, Math.min(index, list.length - 1))].focus();
  }

  function openItem(item) {
    const button = item.querySelector(".moment-link");
    if (button) button.click();
  }

  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" && items().length) {
      event.preventDefault();
      focusItem(0);
    }
  });

  results.addEventListener("keydown", (event) => {
    const item = event.target.closest(".result");
    if (!item || event.target.matches("input, textarea")) return;  // keys of a box in it
    const index = items().indexOf(item);
    const moves = { ArrowDown: index + 1, ArrowUp: index - 1, Home: 0, End: items().length - 1 };
    if (event.key in moves) {
      event.preventDefault();
      if (event.key === "ArrowUp" && index === 0) input.focus();
      else focusItem(moves[event.key]);
    } else if (event.key === "Enter" && event.target === item) {
      event.preventDefault();
      openItem(item);
    }
  });

  // -- wiring -----------------------------------------------------------------------------

  results.addEventListener("click", (event) => {
    const button = event.target.closest(".moment-link");
    if (button && button.dataset.url) {
      play(button.dataset.url, Number(button.dataset.start) || 0, button.dataset.title,
        button.dataset.video);
    }
  });

  facetGroups.addEventListener("click", (event) => {
    const button = event.target.closest(".facet");
    if (button) toggleFilter(button.dataset.param, button.dataset.value);
  });

  chapterList.addEventListener("click", (event) => {
    const button = event.target.closest(".chapter");
    if (button) seekTo(Number(button.dataset.start) || 0);
  });
  player.addEventListener("timeupdate", markChapter);
  player.addEventListener("seeked", markChapter);

  input.addEventListener("input", () => {
    form.dataset.like = "";  // a search typed here is a plain one
    searchSoon();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    form.dataset.like = "";
    search(input.value.trim());
  });

  const address = new URLSearchParams(window.location.search);
  for (const param of Object.values(FACET_PARAMS)) {
    const values = (address.get(param) || "").split(",").map((v) => v.trim()).filter(Boolean);
    if (values.length) filters[param] = values;
  }
  if (input.value.trim()) search(input.value.trim());

  // For tests of the rendering against a given response shape.
  window.reelsearchPage = { showResults: showResults };
})();
