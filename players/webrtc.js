// WHIP publishing and WHEP playing with the browser's own RTCPeerConnection
// (no library). Shared by whip.html and whep.html; loaded after players.js.
//
// The signalling URL: `?url=` if given (the whole WHIP/WHEP endpoint),
// otherwise made from this page's location: the same host, the HTTP API
// port (`?api_port=`, default 11985, PROXY_HTTP_API's default), and
// `/rtc/v1/<whip|whep>/?app=<app>&stream=<stream>`. The form edits it.
// window.__rtc holds the session's state for tests and curious users.
(function () {
  'use strict';
  var P = window.SrsPlayers;
  var q = P.query;

  function signallingUrl(kind) {
    var url = q.get('url');
    if (url) return new URL(url, window.location.href).href;
    var loc = window.location;
    var port = q.get('api_port') || '11985';
    var app = q.get('app') || 'live';
    var stream = q.get('stream') || 'livestream';
    return loc.protocol + '//' + loc.hostname + ':' + port + '/rtc/v1/' + kind +
      '/?app=' + encodeURIComponent(app) + '&stream=' + encodeURIComponent(stream);
  }

  // All candidates in the offer (non-trickle), or what there is after 3 s.
  function gathered(pc) {
    return new Promise(function (resolve) {
      if (pc.iceGatheringState === 'complete') return resolve();
      var done = function () {
        if (pc.iceGatheringState === 'complete') resolve();
      };
      pc.addEventListener('icegatheringstatechange', done);
      window.setTimeout(resolve, 3000);
    });
  }

  // Offer -> POST -> answer. Returns the resource URL (Location), if any.
  function negotiate(pc, url) {
    return pc.createOffer()
      .then(function (o) { return pc.setLocalDescription(o); })
      .then(function () { return gathered(pc); })
      .then(function () {
        return fetch(url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/sdp' },
          body: pc.localDescription.sdp,
        });
      })
      .then(function (r) {
        return r.text().then(function (text) {
          if (!r.ok) throw new Error('POST ' + url + ': ' + r.status + ' ' + text.slice(0, 200));
          var loc = r.headers.get('Location');
          return pc.setRemoteDescription({ type: 'answer', sdp: text }).then(function () {
            return loc ? new URL(loc, url).href : null;
          });
        });
      });
  }

  // Starts a session: `setup(pc)` adds tracks or transceivers first.
  function session(kind, setup) {
    var url = signallingUrl(kind);
    P.bindForm(url);
    var state = window.__rtc = { kind: kind, url: url, state: 'new', resource: null, error: null };
    var pc = new RTCPeerConnection();
    pc.addEventListener('connectionstatechange', function () {
      state.state = pc.connectionState;
      if (pc.connectionState === 'connected') P.status('playing', kind === 'whip' ? 'Publishing' : 'Playing');
      if (pc.connectionState === 'failed') P.error('WebRTC connection failed');
    });
    P.status('loading', 'Connecting…');
    Promise.resolve().then(() => setup(pc))
      .then(function () { return negotiate(pc, url); })
      .then(function (resource) { state.resource = resource; })
      .catch(function (e) {
        state.error = String(e && e.message ? e.message : e);
        P.error(state.error);
      });
    var stop = document.getElementById('stop');
    if (stop) {
      stop.addEventListener('click', function () {
        pc.close();
        state.state = 'closed';
        P.status('loading', 'Stopped');
        if (state.resource) fetch(state.resource, { method: 'DELETE' }).catch(function () {});
      });
    }
    window.addEventListener('pagehide', function () {
      if (state.resource && state.state !== 'closed') {
        fetch(state.resource, { method: 'DELETE', keepalive: true }).catch(function () {});
      }
    });
    return pc;
  }

  window.SrsWebRtc = { session: session, signallingUrl: signallingUrl };
})();
