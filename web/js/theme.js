// Light or dark: the choice saved in localStorage ("reprise.theme"), else the
// system's prefers-color-scheme (followed live). A classic script loaded in
// <head>, so the page is drawn in its theme from the start. The nav's toggle
// calls window.repriseTheme.toggle().
(function () {
  var KEY = 'reprise.theme';
  var media = window.matchMedia ? window.matchMedia('(prefers-color-scheme: dark)') : null;
  function saved() {
    try {
      var v = localStorage.getItem(KEY);
      return v === 'dark' || v === 'light' ? v : null;
    } catch (e) {
      return null;
    }
  }
  function current() {
    return saved() || (media && media.matches ? 'dark' : 'light');
  }
  function apply() {
    document.documentElement.setAttribute('data-theme', current());
  }
  apply();
  if (media && media.addEventListener) media.addEventListener('change', apply);
  window.repriseTheme = {
    current: current,
    toggle: function () {
      var next = current() === 'dark' ? 'light' : 'dark';
      try {
        localStorage.setItem(KEY, next);
      } catch (e) { /* storage refused: the choice lasts for this page */ }
      document.documentElement.setAttribute('data-theme', next);
      return next;
    },
  };
})();
