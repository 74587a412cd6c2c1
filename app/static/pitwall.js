// Pitwall's only script of its own (the Content-Security-Policy allows no inline script and
// no eval): a list that refreshes itself skips a refresh while someone is typing in it.
document.addEventListener("htmx:beforeRequest", function (event) {
  var list = event.detail.elt;
  if (!list || !list.hasAttribute("data-pause-while-typing")) {
    return;
  }
  var active = document.activeElement;
  if (active && list.contains(active) && active.closest("form")) {
    event.preventDefault();
  }
});
