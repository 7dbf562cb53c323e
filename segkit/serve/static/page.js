// segkit's page. A photo -- chosen, dropped, pasted or taken with the camera -- is sent to the service once
// (POST v1/segment?output=labels), and its label map is blended with the classes' colours here, exactly as the
// service's output=overlay draws it, so that the opacity slider answers at once. A plain script, no build step;
// every URL is relative to the page, which may sit behind a proxy under a path of its own.
"use strict";

// Pixels as the file holds them: no colour management (OpenCV applies none) and no premultiplied alpha.
const RAW = {colorSpaceConversion: "none", premultiplyAlpha: "none"};

const page = {
  names: [],                        // the class names by label value (GET v1/model)
  classes: [],                      // the class table: index, name, color
  palette: new Uint8Array(256 * 3), // RGB by label value; past the table black, as the service colours it
  file: null,                       // the photo shown, sent again when the resolution changes
  labels: null,                     // its label map, one value per pixel
  photo: null,                      // its pixels (RGBA) at the label map's size, or null where the browser cannot
  width: 0,                         //   decode its type (the service decodes more: TIFF, for one)
  height: 0,
  image: null,                      // the overlay's pixels, reused by every redraw
  request: 0,                       // the latest photo sent: answers to older ones are dropped
  redraw: false,                    // a redraw is asked for the next frame
};

const $ = (id) => document.getElementById(id);
const canvas = $("overlay");
const context = canvas.getContext("2d");

// ---- the overlay ------------------------------------------------------------------------------------------------

// The service's overlay is OpenCV's addWeighted(colours, alpha, photo, 1 - alpha, 0) on 8-bit pixels: alpha and
// 1 - alpha rounded to float32, each pixel fma(colour, alpha, float32(photo * (1 - alpha))) in float32 (the fused
// multiply-add of OpenCV's vector code on CPUs that have one, every x86-64 one since 2013), then rounded to the
// nearest integer, ties to even, and saturated. colour * alpha is exact in a double (8 + 24 bits), and so is the sum
// for alpha 0 or at least 2^-20 (every slider step), so Math.fround rounds it once, as the fused add does; storing
// into a Uint8ClampedArray rounds ties to even and saturates. All 65536 (colour, photo) pairs for one alpha: a table.
function blendTable(alpha) {
  const colourWeight = Math.fround(alpha);
  const photoWeight = Math.fround(1 - alpha);
  const table = new Uint8ClampedArray(65536);
  for (let colour = 0; colour < 256; colour++) {
    for (let photo = 0; photo < 256; photo++) {
      table[(colour << 8) | photo] = Math.fround(colour * colourWeight + Math.fround(photo * photoWeight));
    }
  }
  return table;
}

function opacity() {
  return Number($("opacity").value) / 100;
}

function draw() {
  page.redraw = false;
  if (!page.labels) {
    return;
  }
  const alpha = opacity();
  const table = blendTable(alpha);
  const labels = page.labels, palette = page.palette, out = page.image.data;
  const photo = page.photo ? page.photo.data : null;
  for (let i = 0, p = 0; i < labels.length; i++, p += 4) {
    const c = 3 * labels[i];
    if (photo) {
      out[p] = table[(palette[c] << 8) | photo[p]];
      out[p + 1] = table[(palette[c + 1] << 8) | photo[p + 1]];
      out[p + 2] = table[(palette[c + 2] << 8) | photo[p + 2]];
    } else {
      out[p] = palette[c];
      out[p + 1] = palette[c + 1];
      out[p + 2] = palette[c + 2];
    }
    out[p + 3] = 255;
  }
  context.putImageData(page.image, 0, 0);
  canvas.dataset.alpha = String(photo ? alpha : 1);
}

function askRedraw() {
  $("opacity-value").textContent = `${$("opacity").value} %`;
  if (!page.redraw) {
    page.redraw = true;
    requestAnimationFrame(draw);
  }
}

// ---- a photo to the service and back ----------------------------------------------------------------------------

async function segment(file) {
  const request = ++page.request;
  const resolution = document.querySelector("input[name=resolution]:checked").value;
  const name = file.name || "the photo";
  showError("");
  setBusy(`Segmenting ${name} at ${resolution} resolution…`);
  const started = performance.now();
  // The browser decodes the photo meanwhile; the service is the one that says whether it is an image at all.
  const decoded = createImageBitmap(file, RAW).catch(() => null);
  let answer, body, roundTrip;
  try {
    answer = await fetch(`v1/segment?output=labels&resolution=${resolution}`, {
      method: "POST", body: file, headers: {"Content-Type": "application/octet-stream"}});
    body = await answer.blob();
    roundTrip = performance.now() - started;
  } catch (error) {
    if (request === page.request) {
      fail(`${name}: the service did not answer (${error.message}); is it still running?`);
    }
    return;
  }
  const bitmap = await decoded;
  if (request !== page.request) {
    if (bitmap) {
      bitmap.close();
    }
    return;
  }
  if (!answer.ok) {
    if (bitmap) {
      bitmap.close();
    }
    fail(`${name}: ${await errorSentence(answer, body)}`);
    return;
  }
  const labelMap = await createImageBitmap(body, RAW);
  const width = labelMap.width, height = labelMap.height;
  const gray = pixels(labelMap, width, height).data;  // a one-channel PNG comes back as R = G = B
  const labels = new Uint8Array(width * height);
  for (let i = 0; i < labels.length; i++) {
    labels[i] = gray[4 * i];
  }
  Object.assign(page, {file, labels, width, height, photo: bitmap ? pixels(bitmap, width, height) : null});
  canvas.width = width;
  canvas.height = height;
  page.image = context.createImageData(width, height);
  draw();
  canvas.hidden = false;
  $("drop").classList.add("has-photo");
  $("opacity").disabled = !page.photo;
  showNote(page.photo ? "" : `This browser cannot show ${name} itself (${file.type || "its type"}); the classes' ` +
                             "colours are shown alone.");
  showLegend(labels);
  showTiming(answer.headers.get("Server-Timing"), roundTrip, width, height, resolution);
  setBusy("");
  document.body.dataset.state = "done";
}

// An image's pixels at width x height. The browser turns photos upright by their EXIF orientation, as the service
// does; were the two ever to disagree on the size, the photo is drawn to the label map's.
function pixels(bitmap, width, height) {
  const scratch = document.createElement("canvas");
  scratch.width = width;
  scratch.height = height;
  const scratchContext = scratch.getContext("2d", {willReadFrequently: true});
  scratchContext.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  return scratchContext.getImageData(0, 0, width, height);
}

// The service's errors are {"error": "one sentence"}; anything else (a proxy's page) is named by its status.
async function errorSentence(answer, body) {
  try {
    const sentence = JSON.parse(await body.text()).error;
    if (typeof sentence === "string" && sentence) {
      return sentence;
    }
  } catch (error) {
    // not JSON: said below
  }
  return `the service answered ${answer.status}${answer.statusText ? ` ${answer.statusText}` : ""}.`;
}

// ---- what the page shows beside the photo -----------------------------------------------------------------------

// The model's classes with their colours; with a label map, each one's share of it too, largest first.
function showLegend(labels) {
  let rows = page.classes.map((c) => ({...c, share: null}));
  if (labels) {
    const counts = new Uint32Array(256);
    for (let i = 0; i < labels.length; i++) {
      counts[labels[i]]++;
    }
    const total = Math.max(labels.length, 1);
    rows = page.classes.map((c) => ({...c, share: counts[c.index] / total}));
    rows.sort((a, b) => b.share - a.share || a.index - b.index);
  }
  $("legend").replaceChildren(...rows.map((row) => {
    const item = element("li", row.share === 0 ? "absent" : "");
    item.dataset.index = String(row.index);
    const swatch = element("span", "swatch");
    swatch.style.background = `rgb(${row.color.join(", ")})`;
    item.append(swatch, element("span", "name", row.name));
    if (row.share !== null) {
      item.dataset.share = String(row.share);
      const meter = element("span", "meter");
      const fill = meter.appendChild(element("span"));
      fill.style.width = `${100 * row.share}%`;
      fill.style.background = swatch.style.background;
      item.append(element("span", "share", percent(row.share)), meter);
    }
    return item;
  }));
}

function percent(share) {
  if (share === 0) {
    return "0 %";
  }
  return share < 0.001 ? "< 0.1 %" : `${(100 * share).toFixed(1)} %`;
}

// Server-Timing: "decode;dur=1.2, wait;dur=0.0, network;dur=40.1, encode;dur=3.2, total;dur=45.0"
function showTiming(header, roundTrip, width, height, resolution) {
  const service = {};
  for (const part of (header || "").split(",")) {
    const found = part.trim().match(/^([\w-]+);dur=([\d.]+)$/);
    if (found) {
      service[found[1]] = Number(found[2]);
    }
  }
  const rows = [["round trip", roundTrip, "main"], ["in the service", service.total, "main"],
                ["network", service.network], ["decode", service.decode], ["queue", service.wait],
                ["PNG encode", service.encode]];
  const list = [];
  for (const [name, ms, kind] of rows) {
    if (ms !== undefined) {
      list.push(element("dt", kind, name), element("dd", kind, `${ms.toFixed(ms < 10 ? 1 : 0)} ms`));
    }
  }
  list.push(element("dt", "", "photo"), element("dd", "", `${width}×${height}, ${resolution}`));
  $("timing").replaceChildren(...list);
}

function showModel(info) {
  page.classes = info.classes;
  page.names = [];
  page.palette.fill(0);
  for (const c of info.classes) {
    page.names[c.index] = c.name;
    page.palette.set(c.color, 3 * c.index);
  }
  $("model").replaceChildren(element("strong", "", info.checkpoint),
                             ` · ${info.backend} (${info.runtime}) · ${info.classes.length} classes`);
  $("model").title = `${info.checkpoint}\nSHA-256 ${info.checkpoint_sha256}`;
  showLegend(null);
}

function showPointer(event) {
  if (!page.labels) {
    return;
  }
  const x = Math.min(page.width - 1, Math.floor(event.offsetX * page.width / canvas.clientWidth));
  const y = Math.min(page.height - 1, Math.floor(event.offsetY * page.height / canvas.clientHeight));
  const label = page.labels[y * page.width + x];
  $("pointer").textContent = `${page.names[label] || `label ${label}`} at (${x}, ${y})`;
}

function element(tag, className = "", text = "") {
  const made = document.createElement(tag);
  if (className) {
    made.className = className;
  }
  if (text) {
    made.textContent = text;
  }
  return made;
}

function setBusy(text) {
  $("busy").hidden = !text;
  $("busy-text").textContent = text;
  if (text) {
    document.body.dataset.state = "busy";
  }
}

function showError(sentence) {
  $("error").textContent = sentence;
  $("error").hidden = !sentence;
}

function showNote(text) {
  $("note").textContent = text;
  $("note").hidden = !text;
}

// An error clears the last result: what is shown is never another photo's.
function fail(sentence) {
  Object.assign(page, {file: null, labels: null, photo: null});
  canvas.hidden = true;
  $("drop").classList.remove("has-photo");
  showLegend(null);
  $("timing").replaceChildren(element("dt", "", "no photo yet"));
  setBusy("");
  showNote("");
  showError(sentence);
  document.body.dataset.state = "error";
}

// ---- the camera -------------------------------------------------------------------------------------------------

let stream = null;

// getUserMedia needs https or localhost; elsewhere (a phone on the service's plain http) the file input with
// capture="environment" opens the phone's own camera app instead.
async function openCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    $("camera-input").click();
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia(
      {video: {facingMode: "environment", width: {ideal: 1920}, height: {ideal: 1080}}, audio: false});
  } catch (error) {
    showError(`the camera cannot be opened (${error.name}); allow it in the browser, or choose a photo.`);
    return;
  }
  $("camera-video").srcObject = stream;
  $("camera").showModal();
}

// The frame as a PNG: lossless, so the page blends the very pixels the service segments.
function takePhoto() {
  const video = $("camera-video");
  if (!video.videoWidth) {
    return;  // no frame yet
  }
  const frame = document.createElement("canvas");
  frame.width = video.videoWidth;
  frame.height = video.videoHeight;
  frame.getContext("2d").drawImage(video, 0, 0);
  $("camera").close();
  frame.toBlob((blob) => segment(new File([blob], "camera.png", {type: "image/png"})), "image/png");
}

function stopCamera() {
  if (stream) {
    stream.getTracks().forEach((track) => track.stop());
    stream = null;
  }
  $("camera-video").srcObject = null;
}

// ---- wiring -----------------------------------------------------------------------------------------------------

function chosen(input) {
  const file = input.files[0];
  input.value = "";  // choosing the same file again is a change too
  if (file) {
    segment(file);
  }
}

function wire() {
  $("choose").addEventListener("change", (event) => chosen(event.target));
  $("camera-input").addEventListener("change", (event) => chosen(event.target));
  $("camera-button").addEventListener("click", openCamera);
  $("camera-take").addEventListener("click", takePhoto);
  $("camera-cancel").addEventListener("click", () => $("camera").close());
  $("camera").addEventListener("close", stopCamera);
  $("opacity").addEventListener("input", askRedraw);
  for (const radio of document.querySelectorAll("input[name=resolution]")) {
    radio.addEventListener("change", () => page.file && segment(page.file));
  }
  canvas.addEventListener("pointermove", showPointer);
  canvas.addEventListener("pointerleave", () => { $("pointer").textContent = ""; });
  // A photo dropped anywhere on the page (the browser would open it in place of the page otherwise).
  document.addEventListener("dragover", (event) => {
    event.preventDefault();
    $("drop").classList.add("over");
  });
  document.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) {
      $("drop").classList.remove("over");
    }
  });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    $("drop").classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) {
      segment(file);
    } else {
      showError("the drop held no file; drop the photo's file itself.");
    }
  });
  document.addEventListener("paste", (event) => {
    const file = event.clipboardData.files[0];
    if (file) {
      segment(file);
    }
  });
}

async function start() {
  wire();
  try {
    const answer = await fetch("v1/model");
    if (!answer.ok) {
      throw new Error(await errorSentence(answer, await answer.blob()));
    }
    showModel(await answer.json());
  } catch (error) {
    $("model").textContent = "the model is unknown";
    fail(`the service's model did not load (${error.message}); reload the page once the service runs.`);
    return;
  }
  document.body.dataset.state = "ready";
}

start();
