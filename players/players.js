// Shared by the player pages: which stream to play (from the page's query),
// and what to show about it (status line, playback stats, errors).
// Plain script, no build step; the pages load it before their own code.
(function () {
  'use strict';

  var query = new URLSearchParams(window.location.search);

  // The stream URL, absolute. `?url=` wins (relative URLs resolve against this
  // page, so `?url=/live/s.flv` goes to the server that served the page);
  // otherwise `?app=` (default `live`) and `?stream=` (default `livestream`)
  // make `/<app>/<stream>.<ext>`.
  function streamUrl(ext) {
    var url = query.get('url');
    if (!url) {
      var app = (query.get('app') || 'live').replace(/^\/+|\/+$/g, '');
      var stream = query.get('stream') || 'livestream';
      var path = app.split('/').map(encodeURIComponent).join('/');
      url = '/' + path + '/' + encodeURIComponent(stream) + '.' + ext;
    }
    return new URL(url, window.location.href).href;
  }

  function el(id) {
    return document.getElementById(id);
  }

  // state: loading | playing | stalled | error
  function status(state, text) {
    var s = el('status');
    if (!s) return;
    s.dataset.state = state;
    s.textContent = text;
  }

  var errorCount = 0;
  function error(text) {
    errorCount += 1;
    status('error', text);
    var list = el('errors');
    if (!list) return;
    var li = document.createElement('li');
    li.textContent = new Date().toLocaleTimeString() + '  ' + text;
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 20) list.removeChild(list.lastChild);
  }

  // Fills the source form with the URL being played; submitting it reloads the
  // page with `?url=`.
  function bindForm(url) {
    var form = el('source');
    if (!form) return;
    form.elements.url.value = url;
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var q = new URLSearchParams();
      q.set('url', form.elements.url.value.trim());
      var engine = query.get('engine');
      if (engine) q.set('engine', engine);
      window.location.search = q.toString();
    });
  }

  // Keeps the stats line current and the status honest: `playing` while
  // currentTime advances, `stalled` when it stops for more than 3 s.
  function watch(video) {
    var last = -1;
    var lastMove = Date.now();
    window.setInterval(function () {
      var t = video.currentTime;
      if (t !== last) {
        last = t;
        lastMove = Date.now();
        if (t > 0 && !video.paused) status('playing', 'Playing');
      } else if (t > 0 && Date.now() - lastMove > 3000 && el('status').dataset.state === 'playing') {
        status('stalled', 'Stalled: no new media for ' + Math.round((Date.now() - lastMove) / 1000) + ' s');
      }
      var buffered = 0;
      if (video.buffered.length) buffered = video.buffered.end(video.buffered.length - 1) - t;
      var stats = el('stats');
      if (stats) {
        stats.textContent =
          'time ' + t.toFixed(1) + ' s · ' +
          (video.videoWidth ? video.videoWidth + '×' + video.videoHeight : 'no picture yet') +
          ' · buffer ' + Math.max(0, buffered).toFixed(1) + ' s' +
          (errorCount ? ' · ' + errorCount + ' error(s)' : '');
      }
    }, 500);
    video.addEventListener('error', function () {
      var e = video.error;
      error('Video element error' + (e ? ' ' + e.code + (e.message ? ': ' + e.message : '') : ''));
    });
  }

  // Starts playback; autoplay of a muted video is allowed, but say so if the
  // browser refuses.
  function play(video) {
    var p = video.play();
    if (p && p.catch) {
      p.catch(function (e) {
        if (e && e.name === 'AbortError') return; // a reload replaced the source
        status('loading', 'Press play to start (' + (e && e.message ? e.message : e) + ')');
      });
    }
  }

  window.SrsPlayers = {
    query: query,
    streamUrl: streamUrl,
    status: status,
    error: error,
    bindForm: bindForm,
    watch: watch,
    play: play,
  };
})();
