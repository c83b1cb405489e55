// The portal's only script: no framework, nothing fetched from elsewhere. Every page works
// without it; it adds the SMS button's countdown, text counters, keyword boxes' suggestions,
// confirmations, dialogs and the live notification bell.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // 获取验证码: asks the portal to send the code (the captcha goes with it), then counts down.
  function smsButton(button) {
    button.addEventListener("click", function () {
      var form = button.closest("form");
      var status = form.querySelector(".sms-status");
      var get = function (name) { var el = form.querySelector('[name="' + name + '"]'); return el ? el.value : ""; };
      button.disabled = true;
      fetch(button.dataset.smsUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ purpose: button.dataset.sms, phone: get("phone"), captcha_id: get("captcha_id"), captcha_answer: get("captcha_answer") })
      }).then(function (r) { return r.json(); }).then(function (answer) {
        if (status) { status.textContent = answer.message || ""; status.className = "sms-status " + (answer.ok ? "hint" : "error"); }
        if (answer.captcha) {
          var img = form.querySelector(".captcha-img");
          var id = form.querySelector('[name="captcha_id"]');
          var field = form.querySelector('[name="captcha_answer"]');
          if (img) { img.src = "data:image/png;base64," + answer.captcha.image_png_base64; }
          if (id) { id.value = answer.captcha.captcha_id; }
          if (field) { field.value = ""; }
        }
        var wait = answer.ok ? 60 : (answer.retry_after || 0);
        if (wait > 0) { countdown(button, wait); } else { button.disabled = false; }
      }).catch(function () {
        if (status) { status.textContent = "网络异常，请稍后重试"; status.className = "sms-status error"; }
        button.disabled = false;
      });
    });
  }

  function countdown(button, seconds) {
    var label = "获取验证码";
    button.disabled = true;
    var tick = function () {
      if (seconds <= 0) { button.disabled = false; button.textContent = label; return; }
      button.textContent = seconds + "秒后重新获取";
      seconds -= 1;
      setTimeout(tick, 1000);
    };
    tick();
  }

  // A textarea with data-counter shows how many of its characters are used (服务评价: 0/200).
  function counter(area) {
    var max = parseInt(area.getAttribute("maxlength"), 10);
    var out = document.getElementById(area.dataset.counter);
    var show = function () { if (out) { out.textContent = Array.from(area.value).length + "/" + max; } };
    area.addEventListener("input", show);
    show();
  }

  // A keyword box (支付认证's 开户所在地, 开户支行): as one types, the reference data's matches
  // fill the box's <datalist> (the page's 查询 button does the same without scripts).
  function lookupBox(input) {
    var list = document.getElementById(input.getAttribute("list"));
    var status = document.getElementById("s-" + input.name);
    var form = input.form;
    var timer = null;
    var asked = 0;
    var ask = function () {
      var url = input.dataset.options + "&q=" + encodeURIComponent(input.value.trim());
      (input.dataset.with || "").split(" ").forEach(function (name) {
        var other = name && form ? form.querySelector('[name="' + name + '"]') : null;
        if (other) { url += "&" + name + "=" + encodeURIComponent(other.value.trim()); }
      });
      var mine = ++asked;
      fetch(url, { headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { options: [], total: 0 }; })
        .then(function (answer) {
          if (mine !== asked || !list) { return; }  // an older answer, overtaken
          list.textContent = "";
          (answer.options || []).forEach(function (o) {
            var option = document.createElement("option");
            option.value = o.value;
            option.textContent = o.label;
            list.appendChild(option);
          });
          if (status) { status.textContent = answer.total ? "找到 " + answer.total + " 个匹配项，请在下拉列表中选择" : "没有找到匹配项，请换个关键字"; }
        }).catch(function () {});
    };
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(ask, 250);
    });
    input.addEventListener("focus", function () { if (!list || !list.options.length) { ask(); } });
  }

  // The bell: the unread count, then live over the portal's event stream.
  function bell(link) {
    var count = document.getElementById("bell-count");
    var show = function (n) { count.textContent = n; count.hidden = !n; };
    fetch("/notifications/unread", { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { unread: 0 }; })
      .then(function (a) { show(a.unread || 0); }).catch(function () {});
    if (!window.EventSource) { return; }
    var source = new EventSource(link.dataset.stream);
    source.addEventListener("end", function () { source.close(); });
    source.onmessage = function (e) {
      show((parseInt(count.textContent, 10) || 0) + 1);
      try {
        var n = JSON.parse(e.data);
        link.title = n.title || "";
        var live = document.getElementById("bell-live");
        if (live) { live.textContent = "新通知：" + (n.title || ""); }
      } catch (err) { /* another shape: the count is enough */ }
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-sms]").forEach(smsButton);
    document.querySelectorAll("textarea[data-counter]").forEach(counter);
    document.querySelectorAll("input[data-options]").forEach(lookupBox);
    document.querySelectorAll("[data-confirm]").forEach(function (b) {
      b.addEventListener("click", function (e) { if (!window.confirm(b.dataset.confirm)) { e.preventDefault(); } });
    });
    document.querySelectorAll("[data-open-dialog]").forEach(function (b) {
      b.addEventListener("click", function (e) {
        var d = document.getElementById(b.dataset.openDialog);
        if (d && d.showModal) { e.preventDefault(); d.showModal(); }
      });
    });
    document.querySelectorAll("[data-close-dialog]").forEach(function (b) {
      b.addEventListener("click", function (e) { var d = b.closest("dialog"); if (d) { e.preventDefault(); d.close(); } });
    });
    var b = document.getElementById("bell");
    if (b) { bell(b); }
  });
})();
