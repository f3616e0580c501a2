/* Patron storefront widget loader: served as /widget/patron.js, embedded with
   <script async src=".../widget/patron.js" data-key="pk_..."></script>.
   It defines window.patron at once (calls queue until the widget runs), then imports
   the wasm widget beside it, and sets patron._r once the widget runs. Any failure
   stays inside: the page never notices. */
(function (w, d) {
  var s = d.currentScript, p = w.patron || {}, q = p._q || [];
  if (p._l || !s) return;
  function stub(n) {
    return function () { if (q.length < 100) q.push([n, [].slice.call(arguments)]); };
  }
  p._l = 1; p._q = q;
  p.track = stub("track"); p.identify = stub("identify"); p.consent = stub("consent");
  w.patron = p;
  try {
    var a = s.dataset, base = s.src.replace(/[^\/?#]*([?#].*)?$/, "");
    p._c = { key: a.key, customer_id: a.customerId, customer_token: a.customerToken,
             join_url: a.joinUrl, consent_version: a.consentVersion, host: new URL(s.src).origin };
    import(base + "patron_widget.js").then(function (m) {
      return m.default({ module_or_path: base + "patron_bg.wasm" }).then(function () {
        ["track", "identify", "consent"].forEach(function (n) {
          p[n] = function () { try { m[n].apply(0, arguments); } catch (e) {} };
        });
        p._r = 1;
        q.splice(0).forEach(function (c) { p[c[0]].apply(0, c[1]); });
      });
    })["catch"](function () {});
  } catch (e) {}
})(window, document);
