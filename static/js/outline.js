/* Outline step of the upload page (vanilla JS, no build step, no inline script).
 *
 * Without this script the form posts the whole photo and the server finds the inner
 * eyelid itself. With it, the patient traces the inner eyelid on a canvas, and the page
 * sends POST /api/predict a PNG of the outline's bounding box where everything outside
 * the outline is transparent: the form the model was trained on (alpha = mask).
 */
(function () {
  "use strict";

  var form = document.getElementById("upload-form");
  var configNode = document.getElementById("hg-config");
  var canvas = document.getElementById("outline-canvas");
  if (!form || !configNode || !canvas || !canvas.getContext || !window.fetch || !window.FormData) {
    return; // the plain form keeps working
  }
  document.documentElement.classList.add("js");

  var config = JSON.parse(configNode.textContent);
  var MAX_BYTES = config.maxBytes;
  var MAX_SIDE = 1024; // the model looks at 224 px; more only costs upload time on slow networks
  var MIN_SIDE = 32; // the server refuses smaller images
  var HIT_RADIUS = 18; // CSS px: how close a touch must be to grab a point
  var TAP_SLOP = 8; // CSS px a tap may wander before it becomes a pan
  var UPLOAD_TIMEOUT_MS = 120000;

  var input = document.getElementById("id_image");
  var dropzone = document.getElementById("dropzone");
  var formStatus = document.getElementById("form-error");
  var step = document.getElementById("outline-step");
  var stepTitle = document.getElementById("outline-title");
  var status = document.getElementById("outline-status");
  var pointCount = document.getElementById("point-count");
  var buttons = {
    undo: document.getElementById("undo-point"),
    clear: document.getElementById("clear-points"),
    zoomIn: document.getElementById("zoom-in"),
    zoomOut: document.getElementById("zoom-out"),
    fit: document.getElementById("zoom-fit"),
    sendOutline: document.getElementById("send-outline"),
    sendWhole: document.getElementById("send-whole"),
    chooseAgain: document.getElementById("choose-again"),
  };
  var ctx = canvas.getContext("2d");
  canvas.setAttribute("aria-label", config.text.canvas_label);

  var state = {
    file: null,
    image: null,
    points: [], // [x, y] in image pixels
    history: [], // earlier copies of points, for undo
    scale: 1, // CSS px per image px
    minScale: 1,
    maxScale: 8,
    ox: 0, // CSS px: where image pixel (0, 0) is drawn
    oy: 0,
    busy: false,
  };
  var pointers = new Map();
  var gesture = null;

  function message(code) {
    return config.messages[code] || config.messages["default"];
  }

  function say(node, text, kind) {
    node.classList.remove("status-error", "status-busy");
    if (kind) node.classList.add("status-" + kind);
    node.textContent = text;
  }

  function showError(node, code) {
    say(node, message(code), "error");
    node.dataset.errorCode = code;
  }

  /* ---- choosing a photo ---- */

  function openFile(file) {
    say(formStatus, "");
    if (!file) {
      showError(formStatus, "missing_image");
      return;
    }
    say(formStatus, config.text.loading, "busy");
    var url = URL.createObjectURL(file);
    var image = new Image();
    image.onload = function () {
      URL.revokeObjectURL(url);
      if (image.naturalWidth < MIN_SIDE || image.naturalHeight < MIN_SIDE) {
        showError(formStatus, "invalid_dimensions");
        return;
      }
      say(formStatus, "");
      startOutline(file, image);
    };
    image.onerror = function () {
      // The browser cannot decode it, so neither could the outline: say so now rather
      // than sending a file that is not a photo over a slow connection.
      URL.revokeObjectURL(url);
      showError(formStatus, "unsupported_media_type");
      formStatus.focus();
    };
    image.src = url;
  }

  input.addEventListener("change", function () {
    // A cancelled picker leaves no file: nothing to say then.
    if (input.files && input.files[0]) openFile(input.files[0]);
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    openFile(input.files && input.files[0]);
  });

  ["dragenter", "dragover"].forEach(function (type) {
    dropzone.addEventListener(type, function (event) {
      event.preventDefault();
      dropzone.classList.add("is-dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    dropzone.addEventListener(type, function () {
      dropzone.classList.remove("is-dragging");
    });
  });
  dropzone.addEventListener("drop", function (event) {
    event.preventDefault();
    var files = event.dataTransfer && event.dataTransfer.files;
    if (!files || !files.length) return;
    try {
      input.files = files;
    } catch (e) {
      /* old browsers: the file is still used below */
    }
    openFile(files[0]);
  });

  // A photo dropped beside the drop zone would otherwise replace the page with the file.
  ["dragover", "drop"].forEach(function (type) {
    window.addEventListener(type, function (event) {
      if (!dropzone.contains(event.target)) event.preventDefault();
    });
  });

  formStatus.setAttribute("tabindex", "-1");

  /* ---- the outline editor ---- */

  function startOutline(file, image) {
    state.file = file;
    state.image = image;
    state.points = [];
    state.history = [];
    step.hidden = false;
    say(status, config.text.ready);
    resizeCanvas();
    fit();
    stepTitle.focus();
    step.scrollIntoView({ block: "start" });
  }

  function resizeCanvas() {
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth;
    var height = canvas.clientHeight;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    draw();
  }

  function fit() {
    if (!state.image) return;
    var w = canvas.clientWidth;
    var h = canvas.clientHeight;
    var iw = state.image.naturalWidth;
    var ih = state.image.naturalHeight;
    var scale = Math.min(w / iw, h / ih);
    state.minScale = scale / 2;
    state.maxScale = Math.max(scale * 12, 4);
    state.scale = scale;
    state.ox = (w - iw * scale) / 2;
    state.oy = (h - ih * scale) / 2;
    draw();
  }

  function zoomAt(factor, cx, cy) {
    var scale = Math.min(state.maxScale, Math.max(state.minScale, state.scale * factor));
    // Keep the image pixel under (cx, cy) where it is.
    var ix = (cx - state.ox) / state.scale;
    var iy = (cy - state.oy) / state.scale;
    state.scale = scale;
    state.ox = cx - ix * scale;
    state.oy = cy - iy * scale;
    draw();
  }

  function toImage(x, y) {
    return [(x - state.ox) / state.scale, (y - state.oy) / state.scale];
  }

  function toScreen(p) {
    return [p[0] * state.scale + state.ox, p[1] * state.scale + state.oy];
  }

  function clampToImage(p) {
    var iw = state.image.naturalWidth;
    var ih = state.image.naturalHeight;
    return [Math.min(iw, Math.max(0, p[0])), Math.min(ih, Math.max(0, p[1]))];
  }

  function remember() {
    state.history.push(state.points.map(function (p) { return p.slice(); }));
    if (state.history.length > 200) state.history.shift();
  }

  function hitTest(x, y) {
    for (var i = state.points.length - 1; i >= 0; i--) {
      var s = toScreen(state.points[i]);
      if (Math.hypot(s[0] - x, s[1] - y) <= HIT_RADIUS) return i;
    }
    return -1;
  }

  function draw() {
    var ratio = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    // The view, exposed for tests and debugging: CSS px = image px * scale + offset.
    canvas.dataset.scale = String(state.scale);
    canvas.dataset.offsetX = String(state.ox);
    canvas.dataset.offsetY = String(state.oy);
    canvas.dataset.points = String(state.points.length);
    if (!state.image) return;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(
      state.image,
      state.ox,
      state.oy,
      state.image.naturalWidth * state.scale,
      state.image.naturalHeight * state.scale
    );
    var pts = state.points.map(toScreen);
    if (pts.length) {
      ctx.beginPath();
      ctx.moveTo(pts[0][0], pts[0][1]);
      for (var i = 1; i < pts.length; i++) ctx.lineTo(pts[i][0], pts[i][1]);
      if (pts.length >= 3) {
        ctx.closePath();
        ctx.fillStyle = "rgba(255, 255, 255, 0.18)";
        ctx.fill();
      }
      // A dark line under a bright one stays visible on pink, red and skin tones.
      ctx.lineJoin = "round";
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 4;
      ctx.stroke();
      ctx.strokeStyle = "#ffe14d";
      ctx.lineWidth = 2;
      ctx.stroke();
      pts.forEach(function (p, index) {
        ctx.beginPath();
        ctx.arc(p[0], p[1], index === 0 ? 8 : 6, 0, Math.PI * 2);
        ctx.fillStyle = index === 0 ? "#ffe14d" : "#fff";
        ctx.fill();
        ctx.lineWidth = 2;
        ctx.strokeStyle = "#000";
        ctx.stroke();
      });
    }
    updateControls();
  }

  function updateControls() {
    var n = state.points.length;
    pointCount.textContent = config.text.points.replace("%(count)s", String(n));
    buttons.undo.disabled = state.busy || state.history.length === 0;
    buttons.clear.disabled = state.busy || n === 0;
    buttons.sendOutline.disabled = state.busy;
    buttons.sendWhole.disabled = state.busy;
    buttons.chooseAgain.disabled = state.busy;
  }

  function localPoint(event) {
    var rect = canvas.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  }

  canvas.addEventListener("pointerdown", function (event) {
    if (!state.image || state.busy) return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    var p = localPoint(event);
    pointers.set(event.pointerId, p);
    if (pointers.size === 2) {
      var both = Array.from(pointers.values());
      gesture = {
        type: "pinch",
        distance: Math.hypot(both[0][0] - both[1][0], both[0][1] - both[1][1]) || 1,
        scale: state.scale,
        anchor: toImage((both[0][0] + both[1][0]) / 2, (both[0][1] + both[1][1]) / 2),
      };
      return;
    }
    if (pointers.size > 2) return;
    var hit = hitTest(p[0], p[1]);
    if (hit >= 0) {
      gesture = { type: "drag", id: event.pointerId, index: hit, moved: false };
    } else {
      gesture = { type: "tap", id: event.pointerId, x: p[0], y: p[1], ox: state.ox, oy: state.oy };
    }
  });

  canvas.addEventListener("pointermove", function (event) {
    if (!pointers.has(event.pointerId) || !gesture) return;
    var p = localPoint(event);
    pointers.set(event.pointerId, p);
    if (gesture.type === "pinch" && pointers.size === 2) {
      var both = Array.from(pointers.values());
      var distance = Math.hypot(both[0][0] - both[1][0], both[0][1] - both[1][1]) || 1;
      var mx = (both[0][0] + both[1][0]) / 2;
      var my = (both[0][1] + both[1][1]) / 2;
      state.scale = Math.min(state.maxScale, Math.max(state.minScale, gesture.scale * distance / gesture.distance));
      state.ox = mx - gesture.anchor[0] * state.scale;
      state.oy = my - gesture.anchor[1] * state.scale;
      draw();
    } else if (gesture.id !== event.pointerId) {
      return;
    } else if (gesture.type === "drag") {
      if (!gesture.moved) remember(); // one undo step per drag, none for a bare press
      gesture.moved = true;
      state.points[gesture.index] = clampToImage(toImage(p[0], p[1]));
      draw();
    } else if (gesture.type === "tap" && Math.hypot(p[0] - gesture.x, p[1] - gesture.y) > TAP_SLOP) {
      gesture.type = "pan";
    }
    if (gesture.type === "pan") {
      state.ox = gesture.ox + (p[0] - gesture.x);
      state.oy = gesture.oy + (p[1] - gesture.y);
      draw();
    }
  });

  function endPointer(event) {
    if (!pointers.has(event.pointerId)) return;
    var p = localPoint(event);
    pointers.delete(event.pointerId);
    if (gesture && gesture.id === event.pointerId && gesture.type === "tap" && event.type === "pointerup") {
      var ip = toImage(p[0], p[1]);
      var iw = state.image.naturalWidth;
      var ih = state.image.naturalHeight;
      if (ip[0] >= 0 && ip[1] >= 0 && ip[0] <= iw && ip[1] <= ih) {
        remember();
        state.points.push(ip);
        say(status, "");
        draw();
      }
    }
    if (pointers.size === 0 || (gesture && gesture.type === "pinch")) gesture = null;
  }

  canvas.addEventListener("pointerup", endPointer);
  canvas.addEventListener("pointercancel", endPointer);

  canvas.addEventListener(
    "wheel",
    function (event) {
      if (!state.image) return;
      event.preventDefault();
      var p = localPoint(event);
      zoomAt(event.deltaY < 0 ? 1.15 : 1 / 1.15, p[0], p[1]);
    },
    { passive: false }
  );

  canvas.addEventListener("keydown", function (event) {
    if (!state.image) return;
    var d = 40; // CSS px per key press
    var moves = { ArrowLeft: [d, 0], ArrowRight: [-d, 0], ArrowUp: [0, d], ArrowDown: [0, -d] };
    if (moves[event.key]) {
      state.ox += moves[event.key][0];
      state.oy += moves[event.key][1];
      draw();
    } else if (event.key === "+" || event.key === "=") {
      zoomAt(1.25, canvas.clientWidth / 2, canvas.clientHeight / 2);
    } else if (event.key === "-") {
      zoomAt(0.8, canvas.clientWidth / 2, canvas.clientHeight / 2);
    } else {
      return;
    }
    event.preventDefault();
  });

  buttons.undo.addEventListener("click", function () {
    if (!state.history.length) return;
    state.points = state.history.pop();
    draw();
  });
  buttons.clear.addEventListener("click", function () {
    if (!state.points.length) return;
    remember();
    state.points = [];
    draw();
  });
  buttons.zoomIn.addEventListener("click", function () {
    zoomAt(1.25, canvas.clientWidth / 2, canvas.clientHeight / 2);
  });
  buttons.zoomOut.addEventListener("click", function () {
    zoomAt(0.8, canvas.clientWidth / 2, canvas.clientHeight / 2);
  });
  buttons.fit.addEventListener("click", fit);
  buttons.chooseAgain.addEventListener("click", function () {
    step.hidden = true;
    state.image = null;
    input.value = "";
    say(status, "");
    input.focus();
  });

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    if (step.hidden) return;
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      resizeCanvas();
      fit();
    }, 150);
  });

  /* ---- what is sent ---- */

  function toBlob(node, type, quality) {
    return new Promise(function (resolve, reject) {
      node.toBlob(function (blob) {
        if (blob) resolve(blob);
        else reject(new Error("toBlob failed"));
      }, type, quality);
    });
  }

  // The outline's bounding box, with everything outside the polygon transparent.
  function renderOutline(factor) {
    var bounds = outlineBounds();
    var w = Math.max(1, Math.round(bounds.width * factor));
    var h = Math.max(1, Math.round(bounds.height * factor));
    var out = document.createElement("canvas");
    out.width = w;
    out.height = h;
    var c = out.getContext("2d");
    c.setTransform(w / bounds.width, 0, 0, h / bounds.height, -bounds.x * w / bounds.width, -bounds.y * h / bounds.height);
    c.beginPath();
    state.points.forEach(function (p, i) {
      if (i === 0) c.moveTo(p[0], p[1]);
      else c.lineTo(p[0], p[1]);
    });
    c.closePath();
    c.clip();
    c.imageSmoothingQuality = "high";
    c.drawImage(state.image, 0, 0);
    return out;
  }

  function outlineBounds() {
    var xs = state.points.map(function (p) { return p[0]; });
    var ys = state.points.map(function (p) { return p[1]; });
    var x0 = Math.max(0, Math.floor(Math.min.apply(null, xs)));
    var y0 = Math.max(0, Math.floor(Math.min.apply(null, ys)));
    var x1 = Math.min(state.image.naturalWidth, Math.ceil(Math.max.apply(null, xs)));
    var y1 = Math.min(state.image.naturalHeight, Math.ceil(Math.max.apply(null, ys)));
    return { x: x0, y: y0, width: Math.max(1, x1 - x0), height: Math.max(1, y1 - y0) };
  }

  async function outlinePng() {
    var bounds = outlineBounds();
    var longSide = Math.max(bounds.width, bounds.height);
    var shortSide = Math.min(bounds.width, bounds.height);
    var factor = Math.min(1, MAX_SIDE / longSide);
    if (shortSide * factor < MIN_SIDE) factor = MIN_SIDE / shortSide; // tiny outline: enlarge
    for (var attempt = 0; attempt < 8; attempt++) {
      var blob = await toBlob(renderOutline(factor), "image/png");
      if (blob.size <= MAX_BYTES) return blob;
      factor *= 0.7;
    }
    throw new Error("too large");
  }

  async function wholePhoto() {
    if (state.file.size <= MAX_BYTES && /^image\/(png|jpeg)$/.test(state.file.type)) {
      return state.file;
    }
    // Too big (or a type the server refuses): a downscaled JPEG of what the browser shows.
    var image = state.image;
    var factor = Math.min(1, 2048 / Math.max(image.naturalWidth, image.naturalHeight));
    for (var attempt = 0; attempt < 8; attempt++) {
      var out = document.createElement("canvas");
      out.width = Math.max(1, Math.round(image.naturalWidth * factor));
      out.height = Math.max(1, Math.round(image.naturalHeight * factor));
      out.getContext("2d").drawImage(image, 0, 0, out.width, out.height);
      var blob = await toBlob(out, "image/jpeg", 0.9);
      if (blob.size <= MAX_BYTES) return blob;
      factor *= 0.7;
    }
    throw new Error("too large");
  }

  function csrfToken() {
    var field = form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function codeForStatus(httpStatus) {
    if (httpStatus === 413) return "file_too_large";
    if (httpStatus === 415) return "unsupported_media_type";
    if (httpStatus === 429) return "throttled";
    if (httpStatus === 403) return "csrf_failed";
    if (httpStatus >= 500) return "service_unavailable";
    return "default";
  }

  function setBusy(busy) {
    state.busy = busy;
    step.setAttribute("aria-busy", busy ? "true" : "false");
    updateControls();
  }

  // One Idempotency-Key per photo sent: sending the same photo (and outline) again
  // after a lost connection reuses the key and the very same bytes, so the server
  // answers with the result it may already have stored instead of storing a second.
  var pending = null;
  async function idempotentUpload(makeBlob, filename) {
    var what = filename + " " + JSON.stringify(state.points);
    if (!pending || pending.file !== state.file || pending.what !== what) {
      var key = window.crypto && crypto.randomUUID ? crypto.randomUUID()
        : Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
      pending = { file: state.file, what: what, key: key, blob: await makeBlob() };
    }
    return pending;
  }

  async function send(makeBlob, filename) {
    if (state.busy) return;
    setBusy(true);
    try {
      say(status, config.text.preparing, "busy");
      var upload = await idempotentUpload(makeBlob, filename);
      var blob = upload.blob;
      say(status, config.text.sending, "busy");
      var data = new FormData();
      data.append("image", blob, filename);
      // A stalled mobile connection should end in a message, not a spinner forever.
      var controller = window.AbortController ? new AbortController() : null;
      var timer = controller ? setTimeout(function () { controller.abort(); }, UPLOAD_TIMEOUT_MS) : null;
      var response = await fetch(config.predictUrl, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: {
          "X-CSRFToken": csrfToken(), Accept: "application/json", "Idempotency-Key": upload.key,
        },
        signal: controller ? controller.signal : undefined,
      });
      clearTimeout(timer);
      var body = null;
      try {
        body = await response.json();
      } catch (e) {
        body = null; // a proxy's HTML error page, say: the status still tells us enough
      }
      if ((response.status === 201 || response.status === 200) && body && body.message_id) {
        say(status, config.text.done, "busy");
        window.location.assign(config.resultUrl.replace("__id__", encodeURIComponent(body.message_id)));
        return;
      }
      var code = body && body.error && body.error.code;
      showError(status, code && config.messages[code] ? code : codeForStatus(response.status));
    } catch (e) {
      showError(status, e && e.message === "too large" ? "file_too_large" : "network");
    }
    setBusy(false);
    status.focus();
  }

  status.setAttribute("tabindex", "-1");

  buttons.sendOutline.addEventListener("click", function () {
    if (state.points.length < 3) {
      showError(status, "outline_too_small");
      status.focus();
      return;
    }
    send(outlinePng, "outline.png");
  });

  buttons.sendWhole.addEventListener("click", function () {
    var name = state.file && state.file.name ? state.file.name : "photo.jpg";
    send(wholePhoto, name);
  });
})();
