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
  var WHOLE_MAX_SIDE = 1600; // the whole photo is downsized to this long side before upload
  var WHOLE_QUALITY = 0.9;
  var THUMB_SIDE = 320; // the result page's picture of what was analysed
  var HIT_RADIUS = 18; // CSS px: at most this close a press must be to drag a point
  var MIN_HIT_RADIUS = 6; // ... and at least this, where points crowd together
  var TAP_SLOP = 8; // CSS px a tap may wander before it becomes a drag or a pan
  var KEY_STEP = 40; // CSS px the photo moves per arrow key press (Shift: KEY_FINE_STEP)
  var KEY_FINE_STEP = 4;
  var THUMB_PREFIX = "hg-analysed:";
  var REFUSALS = ["not_a_conjunctiva", "not_fingernails", "photo_quality", "no_conjunctiva_found", "no_fingernail_found"];
  var MAX_NAILS = 5; // three fingertips in the photo the model was made for; a few spare
  var UPLOAD_TIMEOUT_MS = 120000;

  var input = document.getElementById("id_image");
  // Two pickers for one field: the camera (capture) and the phone's photos / files.
  var inputs = Array.prototype.filter.call(
    form.querySelectorAll("input[type=file]"),
    function (node) { return node.name === input.name; }
  );
  var uploadTitle = document.getElementById("upload-title");
  var refusal = document.getElementById("refusal");
  var keyHelp = document.getElementById("keyboard-help");
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
    retake: document.getElementById("retake"),
    reoutline: document.getElementById("reoutline"),
    nextNail: document.getElementById("next-nail"),
  };
  // The radios sit above the form (form="upload-form"): not inside it in the document.
  var siteInputs = Array.prototype.slice.call(document.querySelectorAll("input[name=site][form=upload-form]"));
  // Words added with the photo gate live in the page (translated by the template).
  var words = {};
  Array.prototype.forEach.call(document.querySelectorAll("#hg-words [data-key]"), function (node) {
    words[node.dataset.key] = node.textContent.trim();
  });
  var ctx = canvas.getContext("2d");

  /* ---- the body site: inner eyelid or fingernails ---- */

  function site() {
    var checked = siteInputs.filter(function (node) { return node.checked; })[0];
    return checked ? checked.value : "conjunctiva";
  }

  function isNails() {
    return site() === "fingernail";
  }

  // The words of the chosen site: "nail.ready" for fingernails, else the eyelid's.
  function siteText(key, fallback) {
    return (isNails() && words["fingernail." + key]) || fallback || "";
  }

  // Each site's instructions, example and outline words sit in the page, marked with
  // data-site; only the chosen site's are shown.
  function showSite() {
    var chosen = site();
    Array.prototype.forEach.call(document.querySelectorAll("[data-site]"), function (node) {
      node.hidden = node.dataset.site !== chosen;
    });
    document.documentElement.dataset.chosenSite = chosen;
    canvas.setAttribute("aria-label", siteText("canvas_label", config.text.canvas_label));
    if (state.image) {
      hideRefusal();
      say(status, readyText());
      draw();
    }
  }

  function readyText() {
    return siteText("ready", config.text.ready);
  }


  var state = {
    file: null,
    image: null,
    points: [], // the outline being drawn: [x, y] in image pixels
    done: [], // fingernails: the nails already outlined (closed), each a list of points
    history: [], // earlier {done, points}, for undo
    scale: 1, // CSS px per image px
    minScale: 1,
    maxScale: 8,
    ox: 0, // CSS px: where image pixel (0, 0) is drawn
    oy: 0,
    busy: false,
    carrying: -1, // the point the keyboard picked up, or -1
    focused: false, // the canvas has keyboard focus: show the crosshair
    lastSent: "", // "outline" or "whole"
    advice: [], // the last refusal's reasons, in words
  };
  var pointers = new Map();
  var gesture = null;
  siteInputs.forEach(function (node) { node.addEventListener("change", showSite); });

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

  function chosenFile() {
    for (var i = 0; i < inputs.length; i++) {
      if (inputs[i].files && inputs[i].files[0]) return inputs[i].files[0];
    }
    return null;
  }

  inputs.forEach(function (picker) {
    picker.addEventListener("change", function () {
      // A cancelled picker leaves no file: nothing to say then.
      if (!picker.files || !picker.files[0]) return;
      // One photo at a time: the other picker lets go of its photo, so that the form
      // (without this script) and the outline both use the one just chosen.
      inputs.forEach(function (other) {
        if (other !== picker) other.value = "";
      });
      openFile(picker.files[0]);
    });
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var file = chosenFile();
    if (file && state.image && file === state.file) {
      // The photo is already open in step 2: go back to it, outline and all.
      step.hidden = false;
      say(status, words.outline_kept || "");
      stepTitle.focus();
      step.scrollIntoView({ block: "start" });
      return;
    }
    openFile(file);
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
    inputs.forEach(function (picker) { picker.value = ""; });
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
    state.done = [];
    state.history = [];
    state.carrying = -1;
    hideRefusal();
    step.hidden = false;
    say(status, readyText());
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

  function copyOutline(points) {
    return points.map(function (p) { return p.slice(); });
  }

  function remember() {
    state.history.push({ done: state.done.map(copyOutline), points: copyOutline(state.points) });
    if (state.history.length > 200) state.history.shift();
  }

  function restore() {
    var earlier = state.history.pop();
    state.done = earlier.done;
    state.points = earlier.points;
  }

  // Every closed outline: the nails already done and the one being drawn (3 points or more).
  function outlines() {
    var all = state.done.slice();
    if (state.points.length >= 3) all.push(state.points);
    return all;
  }

  // Fingernails: the outline being drawn is closed and the next nail starts.
  function closeOutline() {
    if (state.points.length < 3 || state.done.length + 1 >= MAX_NAILS) return false;
    remember();
    state.done.push(state.points);
    state.points = [];
    say(status, (words["fingernail.nail_done"] || "").replace("{count}", String(state.done.length)));
    draw();
    return true;
  }

  // The point a press at (x, y) may drag: the nearest one within its grab radius. The
  // radius shrinks where points crowd (half the distance to the point's nearest
  // neighbour), so that at the default zoom a press between two close points still
  // reaches the photo. A press that does not move adds a point anyway (see endPointer).
  function hitTest(x, y) {
    var screen = state.points.map(toScreen);
    var best = -1;
    var bestDistance = Infinity;
    screen.forEach(function (s, i) {
      var nearest = Infinity;
      screen.forEach(function (t, j) {
        if (j !== i) nearest = Math.min(nearest, Math.hypot(s[0] - t[0], s[1] - t[1]));
      });
      var radius = Math.max(MIN_HIT_RADIUS, Math.min(HIT_RADIUS, nearest / 2));
      var distance = Math.hypot(s[0] - x, s[1] - y);
      if (distance <= radius && distance < bestDistance) {
        best = i;
        bestDistance = distance;
      }
    });
    return best;
  }

  function centre() {
    return [canvas.clientWidth / 2, canvas.clientHeight / 2];
  }

  function drawCrosshair() {
    var c = centre();
    var arm = 14;
    ctx.lineCap = "round";
    [["#000", 5], ["#fff", 2]].forEach(function (pen) {
      ctx.beginPath();
      ctx.moveTo(c[0] - arm, c[1]);
      ctx.lineTo(c[0] - 4, c[1]);
      ctx.moveTo(c[0] + 4, c[1]);
      ctx.lineTo(c[0] + arm, c[1]);
      ctx.moveTo(c[0], c[1] - arm);
      ctx.lineTo(c[0], c[1] - 4);
      ctx.moveTo(c[0], c[1] + 4);
      ctx.lineTo(c[0], c[1] + arm);
      ctx.strokeStyle = pen[0];
      ctx.lineWidth = pen[1];
      ctx.stroke();
    });
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
    canvas.dataset.outlines = String(outlines().length);
    canvas.dataset.outline = JSON.stringify(state.points.map(function (p) {
      return [Math.round(p[0] * 10) / 10, Math.round(p[1] * 10) / 10];
    }));
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
    state.done.forEach(function (outline) {
      var done = outline.map(toScreen);
      ctx.beginPath();
      ctx.moveTo(done[0][0], done[0][1]);
      for (var k = 1; k < done.length; k++) ctx.lineTo(done[k][0], done[k][1]);
      ctx.closePath();
      ctx.fillStyle = "rgba(77, 210, 255, 0.25)";
      ctx.fill();
      ctx.lineJoin = "round";
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 4;
      ctx.stroke();
      ctx.strokeStyle = "#4dd2ff";
      ctx.lineWidth = 2;
      ctx.stroke();
    });
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
        ctx.arc(p[0], p[1], index === 0 ? 8 : index === state.carrying ? 9 : 6, 0, Math.PI * 2);
        ctx.fillStyle = index === state.carrying ? "#4dd2ff" : index === 0 ? "#ffe14d" : "#fff";
        ctx.fill();
        ctx.lineWidth = 2;
        ctx.strokeStyle = "#000";
        ctx.stroke();
      });
    }
    if (state.focused) drawCrosshair();
    updateControls();
  }

  function updateControls() {
    var n = state.points.length;
    pointCount.textContent = config.text.points.replace("%(count)s", String(n));
    if (isNails()) {
      pointCount.textContent += " " + (words["fingernail.nails_outlined"] || "").replace("{count}", String(outlines().length));
    }
    buttons.nextNail.disabled = state.busy || n < 3 || state.done.length + 1 >= MAX_NAILS;
    buttons.undo.disabled = state.busy || state.history.length === 0;
    buttons.clear.disabled = state.busy || (n === 0 && state.done.length === 0);
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
    state.focused = false;
    dropCarried(false);
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
    // A press is a tap until it moves: near a point, moving drags that point; elsewhere
    // it pans the photo. A tap always adds a point (one that does not move never grabs).
    gesture = {
      type: "tap",
      id: event.pointerId,
      x: p[0],
      y: p[1],
      ox: state.ox,
      oy: state.oy,
      index: hitTest(p[0], p[1]),
      moved: false,
    };
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
      return;
    }
    if (gesture.id !== event.pointerId) return;
    if (gesture.type === "tap" && Math.hypot(p[0] - gesture.x, p[1] - gesture.y) > TAP_SLOP) {
      gesture.type = gesture.index >= 0 ? "drag" : "pan";
      if (gesture.type === "drag") {
        remember(); // one undo step per drag
        gesture.moved = true;
        // The point keeps its offset from the finger, so it is not hidden under it.
        var s = toScreen(state.points[gesture.index]);
        gesture.dx = s[0] - gesture.x;
        gesture.dy = s[1] - gesture.y;
      }
    }
    if (gesture.type === "drag") {
      state.points[gesture.index] = clampToImage(toImage(p[0] + gesture.dx, p[1] + gesture.dy));
      draw();
    } else if (gesture.type === "pan") {
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
      // Fingernails: a tap on the first point closes this nail's outline.
      if (isNails() && gesture.index === 0 && state.points.length >= 3) closeOutline();
      else if (ip[0] >= 0 && ip[1] >= 0 && ip[0] <= iw && ip[1] <= ih) addPoint(ip);
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

  function addPoint(ip, announce) {
    remember();
    state.points.push(ip);
    hideRefusal();
    say(status, announce ? (words.point_added || "").replace("{count}", String(state.points.length)) : "");
    draw();
  }

  function countText(template, index) {
    return (template || "")
      .replace("{number}", String(index + 1))
      .replace("{count}", String(state.points.length));
  }

  // The keyboard: the photo moves under a crosshair fixed in the middle of the canvas;
  // Enter places a point there; Space picks up the point under it (then the arrows carry
  // it) and puts it down again; Escape puts it back; N and P bring the next or previous
  // point under the crosshair; Backspace removes the last change.
  function keyPan(dx, dy) {
    state.ox += dx;
    state.oy += dy;
    if (state.carrying >= 0) {
      var c = centre();
      state.points[state.carrying] = clampToImage(toImage(c[0], c[1]));
    }
    draw();
  }

  function centreOn(index) {
    var c = centre();
    var s = toScreen(state.points[index]);
    state.ox += c[0] - s[0];
    state.oy += c[1] - s[1];
    draw();
  }

  function dropCarried(cancel) {
    if (state.carrying < 0) return;
    var index = state.carrying;
    state.carrying = -1;
    if (cancel) restore();
    say(status, countText(cancel ? words.point_put_back : words.point_put_down, index));
    draw();
  }

  canvas.addEventListener("keydown", function (event) {
    if (!state.image || state.busy) return;
    var d = event.shiftKey ? KEY_FINE_STEP : KEY_STEP; // CSS px per key press
    var moves = { ArrowLeft: [d, 0], ArrowRight: [-d, 0], ArrowUp: [0, d], ArrowDown: [0, -d] };
    var c = centre();
    var key = event.key;
    if (moves[key]) {
      keyPan(moves[key][0], moves[key][1]);
    } else if (key === "+" || key === "=") {
      zoomAt(1.25, c[0], c[1]);
    } else if (key === "-") {
      zoomAt(0.8, c[0], c[1]);
    } else if (key === "Enter") {
      if (state.carrying >= 0) {
        dropCarried(false);
      } else {
        var ip = toImage(c[0], c[1]);
        var iw = state.image.naturalWidth;
        var ih = state.image.naturalHeight;
        if (ip[0] >= 0 && ip[1] >= 0 && ip[0] <= iw && ip[1] <= ih) addPoint(ip, true);
        else say(status, words.outside_photo || "");
      }
    } else if (key === " " || key === "Spacebar") {
      if (state.carrying >= 0) {
        dropCarried(false);
      } else {
        var hit = hitTest(c[0], c[1]);
        if (hit < 0) {
          say(status, words.no_point_here || "");
        } else {
          remember(); // one undo step per move
          state.carrying = hit;
          centreOn(hit);
          say(status, countText(words.point_picked_up, hit));
        }
      }
    } else if (key === "Escape" && state.carrying >= 0) {
      dropCarried(true);
    } else if ((key === "n" || key === "N" || key === "p" || key === "P") && state.points.length && state.carrying < 0) {
      var n = state.points.length;
      var current = hitTest(c[0], c[1]);
      var forward = key === "n" || key === "N";
      var next = current < 0 ? (forward ? 0 : n - 1) : (current + (forward ? 1 : n - 1)) % n;
      centreOn(next);
      say(status, countText(words.point_under_cross, next));
    } else if ((key === "Backspace" || key === "Delete") && state.carrying < 0) {
      buttons.undo.click();
    } else {
      return;
    }
    event.preventDefault();
  });

  canvas.addEventListener("focus", function () {
    // The crosshair is for the keyboard: not shown when a click or a tap focused it.
    try {
      state.focused = canvas.matches(":focus-visible");
    } catch (e) {
      state.focused = true;
    }
    draw();
  });
  canvas.addEventListener("keydown", function () {
    if (!state.focused) {
      state.focused = true;
      draw();
    }
  }, true);
  canvas.addEventListener("blur", function () {
    dropCarried(false);
    state.focused = false;
    draw();
  });

  buttons.undo.addEventListener("click", function () {
    if (!state.history.length) return;
    restore();
    draw();
  });
  buttons.clear.addEventListener("click", function () {
    if (!state.points.length && !state.done.length) return;
    remember();
    state.points = [];
    state.done = [];
    draw();
  });
  buttons.zoomIn.addEventListener("click", function () {
    zoomAt(1.25, canvas.clientWidth / 2, canvas.clientHeight / 2);
  });
  buttons.zoomOut.addEventListener("click", function () {
    zoomAt(0.8, canvas.clientWidth / 2, canvas.clientHeight / 2);
  });
  buttons.fit.addEventListener("click", fit);
  buttons.nextNail.addEventListener("click", function () {
    closeOutline();
    canvas.focus();
  });
  // Back to step 1 with no photo: the old photo and its outline are let go; the language
  // (a cookie) and everything else on the page stay as they are.
  function backToPicker(prompt) {
    step.hidden = true;
    hideRefusal();
    state.image = null;
    state.file = null;
    state.points = [];
    state.done = [];
    state.history = [];
    state.carrying = -1;
    inputs.forEach(function (picker) { picker.value = ""; });
    say(status, "");
    say(formStatus, prompt || "");
    if (prompt && state.advice.length) {
      // What went wrong stays in sight while the next photo is taken.
      var list = document.createElement("ul");
      list.className = "refusal-reasons";
      state.advice.forEach(function (text) {
        var item = document.createElement("li");
        item.textContent = text;
        list.appendChild(item);
      });
      formStatus.appendChild(list);
    }
    state.advice = [];
    draw();
    // Focus the first picker the patient can see (the camera on a phone).
    var target = inputs.filter(function (picker) {
      return picker.labels && picker.labels[0] && picker.labels[0].getClientRects().length > 0;
    })[0] || input;
    uploadTitle.scrollIntoView({ block: "start" });
    target.focus();
  }

  buttons.chooseAgain.addEventListener("click", function () {
    backToPicker("");
  });
  buttons.retake.addEventListener("click", function () {
    backToPicker(words.retake_prompt);
  });
  buttons.reoutline.addEventListener("click", function () {
    hideRefusal();
    say(status, readyText());
    canvas.focus();
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
    c.imageSmoothingQuality = "high";
    // Each outline clips its own copy of the photo: the union of the outlines is opaque
    // (alpha 255), everything else transparent, however the outlines overlap.
    outlines().forEach(function (outline) {
      c.save();
      c.beginPath();
      outline.forEach(function (p, i) {
        if (i === 0) c.moveTo(p[0], p[1]);
        else c.lineTo(p[0], p[1]);
      });
      c.closePath();
      c.clip();
      c.drawImage(state.image, 0, 0);
      c.restore();
    });
    return out;
  }

  function outlineBounds() {
    var all = [].concat.apply([], outlines());
    var xs = all.map(function (p) { return p[0]; });
    var ys = all.map(function (p) { return p[1]; });
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

  function scaled(image, factor) {
    var out = document.createElement("canvas");
    out.width = Math.max(1, Math.round(image.naturalWidth * factor));
    out.height = Math.max(1, Math.round(image.naturalHeight * factor));
    var c = out.getContext("2d");
    c.imageSmoothingQuality = "high";
    c.drawImage(image, 0, 0, out.width, out.height);
    return out;
  }

  // The whole photo, downsized in the browser: a phone's 4 MB original takes over a
  // minute on a slow link, and the server finds the eyelid at a fraction of that size.
  // A photo already small enough is sent as it is.
  async function wholePhoto() {
    var image = state.image;
    var longSide = Math.max(image.naturalWidth, image.naturalHeight);
    if (longSide <= WHOLE_MAX_SIDE && state.file.size <= MAX_BYTES && /^image\/(png|jpeg)$/.test(state.file.type)) {
      return state.file;
    }
    var factor = Math.min(1, WHOLE_MAX_SIDE / longSide);
    for (var attempt = 0; attempt < 8; attempt++) {
      var blob = await toBlob(scaled(image, factor), "image/jpeg", WHOLE_QUALITY);
      if (blob.size <= MAX_BYTES) return blob;
      factor *= 0.7;
    }
    throw new Error("too large");
  }

  // What the result page shows as "the area analysed": kept in this tab's
  // sessionStorage only, under the result's id; never sent anywhere.
  function keepThumbnail(messageId) {
    try {
      var picture;
      if (state.lastSent === "outline") {
        var bounds = outlineBounds();
        picture = renderOutline(Math.min(1, THUMB_SIDE / Math.max(bounds.width, bounds.height))).toDataURL("image/png");
      } else {
        var image = state.image;
        var factor = Math.min(1, THUMB_SIDE / Math.max(image.naturalWidth, image.naturalHeight));
        picture = scaled(image, factor).toDataURL("image/jpeg", 0.85);
      }
      var keys = JSON.parse(window.sessionStorage.getItem(THUMB_PREFIX + "keys") || "[]");
      keys.push(messageId);
      while (keys.length > 10) window.sessionStorage.removeItem(THUMB_PREFIX + keys.shift());
      window.sessionStorage.setItem(THUMB_PREFIX + messageId, picture);
      window.sessionStorage.setItem(THUMB_PREFIX + "keys", JSON.stringify(keys));
    } catch (e) {
      /* storage full or refused (private mode): the result page simply shows no picture */
    }
  }

  /* ---- a refused photo ---- */

  function hideRefusal() {
    if (refusal) refusal.hidden = true;
  }

  // The gate's refusal (422) or no eyelid found (400): the reasons in the patient's
  // words, the server's advice when a reason is new to this page, and a way out.
  function showRefusal(error) {
    var code = error.code;
    var details = error.details || {};
    var reasons = Array.isArray(details.reasons) ? details.reasons : [];
    if (code === "no_conjunctiva_found" && !reasons.length) reasons = ["outline_needed"];
    if (code === "no_fingernail_found" && !reasons.length) reasons = ["nail_outline_needed"];
    var summary = words["code." + code] || config.messages[code] || error.message || message("default");
    var lines = [];
    reasons.forEach(function (reason) {
      var text = words["reason." + reason];
      if (text && lines.indexOf(text) < 0) lines.push(text);
    });
    if (!lines.length && details.advice) lines.push(String(details.advice));
    status.classList.remove("status-busy");
    status.classList.add("status-error");
    status.dataset.errorCode = code;
    status.dataset.reasons = reasons.join(" ");
    status.textContent = "";
    var head = document.createElement("p");
    head.textContent = summary;
    status.appendChild(head);
    if (lines.length) {
      var list = document.createElement("ul");
      list.className = "refusal-reasons";
      lines.forEach(function (text) {
        var item = document.createElement("li");
        item.textContent = text;
        list.appendChild(item);
      });
      status.appendChild(list);
    }
    var kept = document.createElement("p");
    kept.className = "refusal-kept";
    kept.textContent = words.nothing_kept || "";
    status.appendChild(kept);
    state.advice = lines;
    buttons.reoutline.textContent = state.lastSent === "whole" ? words.outline_instead : words.outline_change;
    refusal.hidden = false;
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
    var what = filename + " " + site() + " " + JSON.stringify(outlines());
    if (!pending || pending.file !== state.file || pending.what !== what) {
      var key = window.crypto && crypto.randomUUID ? crypto.randomUUID()
        : Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
      pending = { file: state.file, what: what, key: key, blob: await makeBlob() };
    }
    return pending;
  }

  async function send(makeBlob, filename, kind) {
    if (state.busy) return;
    state.lastSent = kind;
    hideRefusal();
    setBusy(true);
    try {
      say(status, config.text.preparing, "busy");
      var upload = await idempotentUpload(makeBlob, filename);
      var blob = upload.blob;
      say(status, config.text.sending, "busy");
      var data = new FormData();
      // A photo sent as it was keeps its name; one re-encoded here is a JPEG.
      data.append("site", site());
      data.append("image", blob, blob === state.file ? filename : blob.type === "image/png" ? "outline.png" : "photo.jpg");
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
        keepThumbnail(body.message_id);
        say(status, config.text.done, "busy");
        window.location.assign(config.resultUrl.replace("__id__", encodeURIComponent(body.message_id)));
        return;
      }
      var code = body && body.error && body.error.code;
      if ((response.status === 422 || response.status === 400) && REFUSALS.indexOf(code) >= 0) {
        showRefusal(body.error);
      } else {
        showError(status, code && config.messages[code] ? code : codeForStatus(response.status));
      }
    } catch (e) {
      showError(status, e && e.message === "too large" ? "file_too_large" : "network");
    }
    setBusy(false);
    status.focus();
  }

  status.setAttribute("tabindex", "-1");

  buttons.sendOutline.addEventListener("click", function () {
    if (!outlines().length) {
      showError(status, isNails() ? "nail_outline_too_small" : "outline_too_small");
      status.focus();
      return;
    }
    send(outlinePng, "outline.png", "outline");
  });

  showSite();

  buttons.sendWhole.addEventListener("click", function () {
    var name = state.file && state.file.name ? state.file.name : "photo.jpg";
    send(wholePhoto, name, "whole");
  });
})();
