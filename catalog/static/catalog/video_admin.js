// Video change page: keyframes and transcript timestamps seek the player; #t=SECONDS too.
(function () {
  "use strict";

  function seek(seconds) {
    const player = document.getElementById("rs-player");
    if (!player) return;
    const go = () => {
      player.currentTime = seconds;
      player.play().catch(() => {});
    };
    if (player.readyState >= HTMLMediaElement.HAVE_METADATA) go();
    else player.addEventListener("loadedmetadata", go, { once: true });
    player.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-seek]");
    if (button) {
      event.preventDefault();
      seek(Number(button.dataset.seek) || 0);
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    const match = /^#t=([\d.]+)$/.exec(window.location.hash);
    if (match) seek(Number(match[1]));
  });
})();
