// The demo page: pick an image, type expressions, optionally click points / drag a box,
// and show the server's masks. Plain JS, no library, nothing loaded from elsewhere.
'use strict';

const $ = (id) => document.getElementById(id);
const state = {
  info: null,
  image: null,    // {data: data URL} or {example: name}, plus width, height, element
  points: [],     // [x, y, label] in image pixels (label 1 foreground, 0 background)
  box: null,      // [x1, y1, x2, y2] in image pixels
  drag: null,     // {x, y} where the pointer went down
};

function setState(name) { document.body.dataset.state = name; }

function showError(message) {
  const box = $('error');
  box.textContent = message;
  box.hidden = !message;
}

function setStatus(message) { $('status').textContent = message; }

async function api(path, body) {
  let response;
  try {
    response = await fetch(path, body === undefined ? {} : {
      method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body),
    });
  } catch (err) {
    throw new Error('cannot reach the demo server (' + err.message + '): is it still running?');
  }
  let payload = null;
  try { payload = await response.json(); } catch (err) { payload = null; }
  if (!response.ok) {
    let detail = payload && payload.detail;
    if (Array.isArray(detail)) {  // request validation errors
      detail = detail.map((d) => (d.loc || []).join('.') + ': ' + d.msg).join('; ');
    }
    throw new Error(detail || ('the server answered ' + response.status));
  }
  return payload;
}

// ------------------------------------------------------------------ the image and prompts
function promptsEnabled() {
  return state.info && (state.info.points || state.info.boxes);
}

function draw() {
  const canvas = $('canvas');
  const image = state.image;
  if (!image || !image.element) {
    canvas.hidden = true;
    $('no-image').hidden = false;
    return;
  }
  canvas.width = image.width;
  canvas.height = image.height;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(image.element, 0, 0);
  const r = Math.max(2, Math.round(Math.max(image.width, image.height) / 80));
  ctx.lineWidth = Math.max(1, r / 2);
  for (const [x, y, label] of state.points) {
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.fillStyle = label ? '#22c55e' : '#ef4444';
    ctx.fill();
    ctx.strokeStyle = '#fff';
    ctx.stroke();
  }
  if (state.box) {
    const [x1, y1, x2, y2] = state.box;
    ctx.strokeStyle = '#facc15';
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
  }
  canvas.hidden = false;
  $('no-image').hidden = true;
  const parts = [];
  if (state.points.length) parts.push(state.points.length + ' point(s)');
  if (state.box) parts.push('a box');
  $('prompt-summary').textContent = parts.length ? 'with ' + parts.join(' and ') : '';
}

function clearPrompts() {
  state.points = [];
  state.box = null;
  draw();
}

function showImage(image, src) {
  const element = new Image();
  element.onload = () => {
    image.element = element;
    image.width = element.naturalWidth;
    image.height = element.naturalHeight;
    if (state.image === image) draw();
  };
  element.onerror = () => {
    if (state.image === image) setStatus('the browser cannot preview this image; it can still be segmented');
  };
  element.src = src;
}

function selectImage(image, src) {
  state.image = image;
  state.points = [];
  state.box = null;
  $('results').replaceChildren();
  showImage(image, src);
}

async function onUpload(event) {
  const file = event.target.files[0];
  if (!file) return;
  for (const thumb of document.querySelectorAll('#examples img')) thumb.classList.remove('selected');
  showError('');
  setState('busy');
  setStatus('checking ' + file.name + '\u2026');
  const data = await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  }).catch((err) => null);
  try {
    if (data === null) throw new Error('the browser could not read ' + file.name);
    const size = await api('/api/image', {image: data});
    selectImage({data: data, name: file.name, width: size.width, height: size.height}, data);
    setStatus(file.name + ': ' + size.width + ' x ' + size.height);
    setState('image');
  } catch (err) {
    state.image = null;
    $('results').replaceChildren();
    draw();
    setStatus('');
    showError(file.name + ': ' + err.message);
    setState('error');
  }
}

function onExample(name, thumb) {
  for (const other of document.querySelectorAll('#examples img')) other.classList.remove('selected');
  thumb.classList.add('selected');
  $('upload').value = '';
  showError('');
  selectImage({example: name, name: name}, '/api/examples/' + encodeURIComponent(name));
  setStatus('example ' + name);
  setState('image');
}

function imagePoint(event) {
  const canvas = $('canvas');
  const rect = canvas.getBoundingClientRect();
  const x = (event.clientX - rect.left) * canvas.width / rect.width;
  const y = (event.clientY - rect.top) * canvas.height / rect.height;
  return [Math.min(Math.max(x, 0), canvas.width), Math.min(Math.max(y, 0), canvas.height)];
}

function onPointerDown(event) {
  if (!promptsEnabled() || !state.image || !state.image.element) return;
  const [x, y] = imagePoint(event);
  state.drag = {x: x, y: y};
  event.preventDefault();
}

function onPointerUp(event) {
  if (!state.drag) return;
  const [x, y] = imagePoint(event);
  const start = state.drag;
  state.drag = null;
  const canvas = $('canvas');
  const tolerance = 4 * canvas.width / canvas.getBoundingClientRect().width;  // 4 screen px
  if (state.info.boxes && (Math.abs(x - start.x) > tolerance || Math.abs(y - start.y) > tolerance)) {
    state.box = [Math.min(x, start.x), Math.min(y, start.y), Math.max(x, start.x), Math.max(y, start.y)]
      .map((v) => Math.round(v * 10) / 10);
  } else if (state.info.points) {
    state.points.push([Math.round(x * 10) / 10, Math.round(y * 10) / 10, event.shiftKey ? 0 : 1]);
  }
  draw();
}

// ------------------------------------------------------------------ segmenting
// What stands for the drawing of one expression: the mask over the image or, when the
// model's no-target head says the expression names nothing (its mask is empty), a message.
function resultPicture(result) {
  if (result.no_target) {
    const message = document.createElement('p');
    message.className = 'no-target';
    message.setAttribute('role', 'note');
    message.textContent = 'no target (score ' + result.no_target_score.toFixed(2) + ')';
    return message;
  }
  const overlay = document.createElement('img');
  overlay.className = 'overlay';
  overlay.alt = "mask of \"" + result.caption + "\" over the image";
  overlay.src = result.overlay;
  return overlay;
}

function renderResults(payload) {
  const results = $('results');
  results.replaceChildren();
  payload.results.forEach((result, i) => {
    const figure = document.createElement('figure');
    figure.className = 'result';
    figure.dataset.index = String(i);
    if (result.no_target) figure.classList.add('no-target');
    const picture = resultPicture(result);
    const mask = document.createElement('img');
    mask.className = 'mask';
    mask.alt = "binary mask of \"" + result.caption + "\"";
    mask.src = result.mask;
    const caption = document.createElement('figcaption');
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = result.caption || result.text || "";
    const score = document.createElement('span');
    score.className = 'score';
    score.textContent = 'score ' + result.score.toFixed(3);
    const link = document.createElement('a');
    link.href = result.mask;
    link.download = 'mask_' + i + '.png';
    link.textContent = 'mask PNG';
    caption.append(text, ' \u2014 ', score, ' \u00b7 ', String(result.area) + ' px \u00b7 ', link);
    figure.append(picture, caption, mask);
    results.append(figure);
  });
}

async function onSegment() {
  const button = $('segment');
  const texts = $('texts').value.split('\n').map((t) => t.trim()).filter((t) => t.length);
  const body = {texts: texts, semantic: $('semantic').checked};
  if (state.image && state.image.example) body.example = state.image.example;
  else if (state.image) body.image = state.image.data;
  if (state.points.length) body.points = state.points;
  if (state.box) body.box = state.box;
  showError('');
  $('results').replaceChildren();
  setStatus('segmenting\u2026');
  setState('busy');
  button.disabled = true;
  const started = performance.now();
  try {
    const payload = await api('/api/segment', body);
    renderResults(payload);
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    setStatus(payload.results.length + ' mask(s) in ' + seconds + ' s (server ' +
              payload.seconds.toFixed(2) + ' s; ' +
              (payload.image_encoded ? 'image encoded' : 'image embedding reused from the cache') + ')');
    setState('done');
  } catch (err) {
    setStatus('');
    showError(err.message);
    setState('error');
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ start
async function start() {
  $('upload').addEventListener('change', onUpload);
  $('segment').addEventListener('click', onSegment);
  $('clear-prompts').addEventListener('click', clearPrompts);
  $('texts').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) onSegment();
  });
  const canvas = $('canvas');
  canvas.addEventListener('pointerdown', onPointerDown);
  canvas.addEventListener('pointerup', onPointerUp);
  try {
    state.info = await api('/api/info');
  } catch (err) {
    showError(err.message);
    setState('error');
    return;
  }
  const info = state.info;
  $('model-info').textContent = 'model: ' + info.model + ' \u00b7 weights: ' + info.weights;
  if (info.examples.length) {
    const box = $('examples');
    for (const name of info.examples) {
      const thumb = document.createElement('img');
      thumb.src = '/api/examples/' + encodeURIComponent(name);
      thumb.alt = name;
      thumb.title = name;
      thumb.dataset.name = name;
      thumb.addEventListener('click', () => onExample(name, thumb));
      box.append(thumb);
    }
    $('examples-box').hidden = false;
  }
  if (promptsEnabled()) {
    const help = [];
    if (info.points) help.push('click: a foreground point, shift+click: a background point');
    if (info.boxes) help.push('drag: a box');
    $('prompt-help').textContent = 'Optional prompts on the image \u2014 ' + help.join('; ') + '.';
    $('prompt-controls').hidden = false;
  }
  setState('ready');
}

start();
