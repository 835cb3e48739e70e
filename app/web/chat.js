// Modelgate's chat page: a small graphql-transport-ws client and the page around it.
// No framework and no request anywhere but this server (its Content-Security-Policy enforces that).
// Everything the server sends is shown with textContent, never parsed as HTML.

const KEY_STORAGE = 'modelgate.apiKey'; // sessionStorage: gone with the tab, never in the URL

const MODEL_FIELDS = `fragment ModelFields on Model {
  id name description provider accessTier lifecycleState endOfLifeAt deprecationNotice isRecommended
  replacement { name }
  ... on UserModel { isDefault }
}`;
const SETUP = `query Setup {
  viewer { organization { name projects(first: 100) { nodes { id name } } } project { id name } }
  availableModels(modelGroup: CHAT) { ...ModelFields }
} ${MODEL_FIELDS}`;
const MODELS = `query Models($projectId: ID) {
  availableModels(projectId: $projectId, modelGroup: CHAT) { ...ModelFields }
} ${MODEL_FIELDS}`;
const CHAT_STREAM = `subscription Chat($input: ChatInput!) { chatStream(input: $input) {
  __typename
  ... on ChatStreamStart { requestId servedBy { name } }
  ... on ChatStreamDelta { text }
  ... on ChatStreamToolCallDelta { index name argumentsDelta }
  ... on ChatStreamToolCall { index toolCall { id name arguments } }
  ... on ChatStreamReset { reason servedBy { name } }
  ... on ChatStreamEnd { finishReason usage { inputTokens outputTokens totalTokens credits }
                         warnings { code message } }
  ... on ChatStreamError { code message retryable retryAfter }
} }`;

const PROVIDER_LABELS = {
  ALEPH_ALPHA: 'Aleph Alpha', ANTHROPIC: 'Anthropic', AWS_BEDROCK: 'AWS Bedrock',
  AZURE_OPENAI: 'Azure OpenAI', ECHO: 'Echo (offline demo)', GOOGLE_GENAI: 'Google Gemini',
  GOOGLE_VERTEX_AI: 'Google Vertex AI', MISTRAL: 'Mistral', OPENAI: 'OpenAI',
  OPENAI_COMPATIBLE: 'OpenAI-compatible',
};

// ---- GraphQL over HTTP, for the key check and the model list ------------------------------------

async function queryHttp(key, query, variables = {}) {
  const response = await fetch('/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify({ query, variables }),
    credentials: 'omit',
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new Error(`The server answered ${response.status} without a GraphQL result.`);
  }
  if (body.errors?.length) {
    const unauthenticated = body.errors.some((e) => e.extensions?.code === 'UNAUTHENTICATED');
    throw new Error(unauthenticated ? 'The key was not accepted.' : errorText(body.errors));
  }
  return body.data;
}

function errorText(errors) {
  return errors.map((e) => e.message).join(' ');
}

// ---- A graphql-transport-ws client ----------------------------------------------------------------
// One socket for the page's life. The key goes in connection_init. A dropped socket is reopened
// with exponential backoff; subscriptions running at the time are sent again once acknowledged
// (their sink hears `restart`), as the reference graphql-ws client does.

// Close codes after which trying again cannot help (bad key, protocol misuse).
const FATAL_CLOSE_CODES = new Set([4400, 4401, 4403, 4406, 4409, 4429]);
const GIVE_UP_AFTER = 5; // reconnect attempts before running subscriptions are failed

class TransportWsClient {
  constructor(url, connectionParams, onStatus) {
    this.url = url;
    this.connectionParams = connectionParams;
    this.onStatus = onStatus;
    this.socket = null;
    this.acked = false;
    this.subs = new Map(); // id -> { payload, sink, sent }
    this.nextId = 1;
    this.attempt = 0;
    this.retryTimer = null;
    this.disposed = false;
  }

  connect() {
    if (this.socket || this.disposed) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const socket = new WebSocket(this.url, 'graphql-transport-ws');
    this.socket = socket;
    this.acked = false;
    this.onStatus('connecting');
    socket.onopen = () => this.send({ type: 'connection_init', payload: this.connectionParams() });
    socket.onmessage = (event) => this.receive(socket, event.data);
    socket.onclose = (event) => this.closed(socket, event);
  }

  subscribe(payload, sink) {
    const id = String(this.nextId++);
    this.subs.set(id, { payload, sink, sent: false });
    if (this.acked) this.start(id);
    else this.connect();
    return () => {
      const sub = this.subs.get(id);
      if (!sub) return;
      this.subs.delete(id);
      // The server cancels the stream (and the provider call) when it sees `complete`.
      if (sub.sent && this.acked) this.send({ id, type: 'complete' });
    };
  }

  dispose() {
    this.disposed = true;
    clearTimeout(this.retryTimer);
    this.subs.clear();
    this.socket?.close(1000, 'Normal Closure');
    this.socket = null;
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  start(id) {
    const sub = this.subs.get(id);
    if (sub.sent) sub.sink.restart?.();
    sub.sent = true;
    this.send({ id, type: 'subscribe', payload: sub.payload });
  }

  receive(socket, raw) {
    if (socket !== this.socket) return;
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      socket.close(4400, 'Invalid message received');
      return;
    }
    const sub = this.subs.get(message.id);
    switch (message.type) {
      case 'connection_ack':
        this.acked = true;
        this.attempt = 0;
        this.onStatus('connected');
        for (const id of this.subs.keys()) this.start(id);
        break;
      case 'ping':
        this.send({ type: 'pong' });
        break;
      case 'pong':
        break;
      case 'next':
        sub?.sink.next(message.payload);
        break;
      case 'error':
        this.subs.delete(message.id);
        sub?.sink.error(message.payload);
        break;
      case 'complete':
        this.subs.delete(message.id);
        sub?.sink.complete();
        break;
      default:
        socket.close(4400, `Unexpected message type ${message.type}`);
    }
  }

  closed(socket, event) {
    if (socket !== this.socket) return;
    this.socket = null;
    this.acked = false;
    if (this.disposed) return;
    if (FATAL_CLOSE_CODES.has(event.code)) {
      const reason = event.code === 4403 ? 'The server refused the key.' : `Closed: ${event.reason}`;
      this.failAll(reason);
      this.onStatus('refused', reason);
      return;
    }
    this.attempt += 1;
    if (this.attempt > GIVE_UP_AFTER) this.failAll('Lost the connection to the server.');
    // 0.5 s, 1 s, 2 s … up to 15 s, with jitter so that many pages do not return at once.
    const delay = Math.min(15000, 500 * 2 ** (this.attempt - 1)) * (0.75 + Math.random() / 2);
    this.onStatus('reconnecting', `Connection lost; reconnecting in ${Math.ceil(delay / 1000)} s…`);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  failAll(message) {
    const subs = [...this.subs.values()];
    this.subs.clear();
    for (const sub of subs) sub.sink.error([{ message }]);
  }
}

// ---- The page ------------------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);
const state = { key: null, client: null, boundProject: null, models: [], history: [], stream: null };

function setConnection(kind, text) {
  const labels = { connecting: 'Connecting…', connected: 'Connected', refused: 'Refused', idle: 'Not connected' };
  $('connection').dataset.state = kind;
  $('connection').textContent = text ?? labels[kind] ?? kind;
  updateSettingsSummary();
}

// Phones: once a key works the settings fold into one line, leaving the screen to the conversation
// (wide screens always show them: the CSS ignores the fold there).
function foldSettings(folded) {
  $('settings').dataset.folded = String(folded);
  $('settings-toggle').setAttribute('aria-expanded', String(!folded));
}

function updateSettingsSummary() {
  const model = state.models.find((m) => m.id === $('model').value);
  $('settings-summary').textContent = [model?.name, $('connection').textContent].filter(Boolean).join(' · ');
}

function socketUrl() {
  const url = new URL('/graphql', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

async function connect(key) {
  setConnection('connecting', 'Checking the key…');
  let data;
  try {
    data = await queryHttp(key, SETUP);
  } catch (error) {
    setConnection('refused', error.message);
    return;
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  stopStream('Stopped.');
  state.key = key;
  state.client?.dispose();
  state.client = new TransportWsClient(socketUrl(), () => ({ apiKey: state.key }), setConnection);
  state.client.connect();
  fillProjects(data.viewer);
  fillModels(data.availableModels);
  showKeyEntry(false);
  foldSettings(true);
  $('options').hidden = false;
  $('message').disabled = false;
  updateButtons();
  $('message').focus();
}

function forgetKey() {
  stopStream('Stopped.');
  state.client?.dispose();
  Object.assign(state, { key: null, client: null, models: [], history: [] });
  sessionStorage.removeItem(KEY_STORAGE);
  $('api-key').value = '';
  showKeyEntry(true);
  foldSettings(false);
  $('options').hidden = true;
  $('message').disabled = true;
  clearTranscript();
  setConnection('idle');
  updateButtons();
  $('api-key').focus();
}

// Once a key works, its form folds away to leave room for the conversation (on phones above all).
function showKeyEntry(show) {
  $('key-entry').hidden = !show;
  $('change-key').hidden = show || !state.key;
  $('forget-key').hidden = show || !state.key;
}

function fillProjects(viewer) {
  const select = $('project');
  select.replaceChildren();
  state.boundProject = viewer.project;
  if (viewer.project) {
    select.append(new Option(viewer.project.name, viewer.project.id));
    select.disabled = true;
    $('project-hint').textContent = 'This key is bound to this project.';
    return;
  }
  select.disabled = false;
  select.append(new Option('None (organization models only)', ''));
  for (const project of viewer.organization?.projects.nodes ?? []) {
    select.append(new Option(project.name, project.id));
  }
  $('project-hint').textContent = 'Calls use this project’s models and default.';
}

async function projectChanged() {
  try {
    const data = await queryHttp(state.key, MODELS, { projectId: $('project').value || null });
    fillModels(data.availableModels);
  } catch (error) {
    $('model-info').textContent = error.message;
  }
}

function endOfLifeDate(model) {
  return model.endOfLifeAt ? model.endOfLifeAt.slice(0, 10) : null;
}

function optionLabel(model) {
  const parts = [model.name + (model.isDefault ? ' (project default)' : '')];
  if (model.accessTier === 'PREMIUM') parts.push('premium');
  if (model.lifecycleState === 'DEPRECATED') {
    let text = `deprecated, end of life ${endOfLifeDate(model)}`;
    if (model.replacement) text += ` → ${model.replacement.name}`;
    parts.push(text);
  } else if (model.lifecycleState !== 'ACTIVE') {
    parts.push(model.lifecycleState.toLowerCase().replaceAll('_', ' '));
  }
  return parts.join(' · ');
}

function fillModels(models) {
  const select = $('model');
  const previous = select.value;
  state.models = models;
  const groups = new Map();
  for (const model of [...models].sort((a, b) => a.name.localeCompare(b.name))) {
    const label = PROVIDER_LABELS[model.provider] ?? model.provider;
    if (!groups.has(label)) groups.set(label, []);
    groups.get(label).push(model);
  }
  select.replaceChildren();
  for (const label of [...groups.keys()].sort()) {
    const group = document.createElement('optgroup');
    group.label = label;
    for (const model of groups.get(label)) group.append(new Option(optionLabel(model), model.id));
    select.append(group);
  }
  if (!models.length) select.append(new Option('No models available', ''));
  // Keep the choice when it is still offered; else the project default, else a recommended one.
  const pick = models.find((m) => m.id === previous) ?? models.find((m) => m.isDefault)
    ?? models.find((m) => m.isRecommended) ?? models[0];
  select.value = pick?.id ?? '';
  showModelInfo();
  updateButtons();
  updateSettingsSummary();
}

function badge(text, kind) {
  const span = document.createElement('span');
  span.className = `badge badge-${kind}`;
  span.textContent = text;
  return span;
}

function showModelInfo() {
  const info = $('model-info');
  info.replaceChildren();
  const model = state.models.find((m) => m.id === $('model').value);
  if (!model) return;
  if (model.isDefault) info.append(badge('Project default', 'default'));
  if (model.accessTier === 'PREMIUM') info.append(badge('Premium', 'premium'));
  if (model.lifecycleState === 'DEPRECATED') {
    info.append(badge('Deprecated', 'deprecated'));
    let text = ` End of life on ${endOfLifeDate(model)}.`;
    if (model.replacement) text += ` Use ${model.replacement.name} instead.`;
    if (model.deprecationNotice) text += ` ${model.deprecationNotice}`;
    info.append(text);
  } else if (model.lifecycleState !== 'ACTIVE') {
    info.append(badge(model.lifecycleState.toLowerCase().replaceAll('_', ' '), 'deprecated'));
  }
  if (model.description) {
    const description = document.createElement('span');
    description.className = 'description';
    description.textContent = model.description;
    info.append(description);
  }
}

function updateButtons() {
  const streaming = state.stream !== null;
  $('send').disabled = streaming || !state.key || !$('model').value;
  $('stop').disabled = !streaming;
}

// ---- The conversation ------------------------------------------------------------------------------

function clearTranscript() {
  const note = document.createElement('li');
  note.className = 'empty';
  note.textContent = 'Connect with a key, pick a model and say hello.';
  $('transcript').replaceChildren(note);
}

// The transcript is the part of the page that scrolls, above the message box at every width. While
// the reader is at its end, new text keeps the end in view; a reader who scrolled up stays put.
const FOLLOW_SLACK_PX = 48;

function changeTranscript(change, { follow = false } = {}) {
  const list = $('transcript');
  const atEnd = follow || list.scrollHeight - list.scrollTop - list.clientHeight <= FOLLOW_SLACK_PX;
  const result = change();
  if (atEnd) list.scrollTop = list.scrollHeight;
  return result;
}

function addMessage(role, text) {
  return changeTranscript(() => {
    $('transcript').querySelector('.empty')?.remove();
    const item = document.createElement('li');
    item.className = `message ${role}`;
    const heading = document.createElement('p');
    heading.className = 'role';
    heading.textContent = role === 'user' ? 'You' : 'Assistant';
    const content = document.createElement('div');
    content.className = 'content';
    content.textContent = text;
    item.append(heading, content);
    $('transcript').append(item);
    return item;
  }, { follow: true }); // the user just sent it: show it
}

function addLine(item, className, text) {
  return changeTranscript(() => {
    const line = document.createElement('p');
    line.className = className;
    line.textContent = text;
    item.append(line);
    return line;
  });
}

// Credits as a person reads them: "0 credits", "< 0.01 credits", "1.2 credits", "1 credit".
export function creditsText(value) {
  const credits = Number(value);
  if (!Number.isFinite(credits)) return `${value} credits`;
  if (credits === 0) return '0 credits';
  if (credits < 0.01) return '< 0.01 credits';
  const shown = credits.toLocaleString('en', { maximumFractionDigits: 2 });
  return `${shown} ${shown === '1' ? 'credit' : 'credits'}`;
}

function send() {
  const text = $('message').value.trim();
  if (!text || state.stream || !state.client) return;
  const input = { messages: [...state.history, { role: 'USER', content: text }], model: $('model').value };
  const projectId = state.boundProject ? null : $('project').value;
  if (projectId) input.projectId = projectId;
  const systemPrompt = $('system-prompt').value.trim();
  if (systemPrompt) input.systemPrompt = systemPrompt;
  if ($('demo-tool').checked) input.tools = [DEMO_TOOL];

  addMessage('user', text);
  $('message').value = '';
  ask(text, input);
}

// One answer of the model: a new assistant message, filled as the events come.
function ask(text, input) {
  const item = addMessage('assistant', '');
  item.classList.add('pending');
  const current = { text, input, item, answer: '', calls: [], reset: false, finished: false };
  state.stream = current;
  $('transcript').setAttribute('aria-busy', 'true');
  updateButtons();

  current.unsubscribe = state.client.subscribe({ query: CHAT_STREAM, variables: { input } }, {
    next: (payload) => {
      if (payload.errors?.length) fail(current, errorText(payload.errors));
      else onEvent(current, payload.data.chatStream);
    },
    error: (errors) => {
      fail(current, errorText(errors));
      finish(current);
    },
    complete: () => finish(current),
    restart: () => {
      setAnswer(current, '');
      current.item.classList.add('pending');
      addLine(current.item, 'note', 'The connection dropped; the question was sent again.');
    },
  });
}

// ---- Tool calls: shown as the model writes them; the demo tool runs here, in the page -------------

const DEMO_TOOL = {
  name: 'get_time',
  description: 'The current date and time in a time zone.',
  parameters: {
    type: 'object',
    properties: { zone: { type: 'string', description: 'An IANA time zone, e.g. Europe/Paris' } },
    required: ['zone'],
  },
};

// The call's block in the message: "Tool call · name" and its arguments, pretty once complete.
function toolCallBlock(stream, index) {
  if (!stream.calls[index]) {
    stream.item.classList.remove('pending');
    stream.calls[index] = changeTranscript(() => {
      const block = document.createElement('figure');
      block.className = 'tool-call';
      const caption = document.createElement('figcaption');
      const args = document.createElement('pre');
      block.append(caption, args);
      stream.item.querySelector('.content').before(block);
      return { block, caption, args, text: '', call: null };
    });
  }
  return stream.calls[index];
}

export function prettyArguments(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text; // as the model wrote it
  }
}

export function runDemoTool(call) {
  let zone;
  try {
    ({ zone } = JSON.parse(call.arguments));
    return `${new Date().toLocaleString('en-GB', { timeZone: zone, timeZoneName: 'short' })}`;
  } catch {
    return `unknown time zone ${JSON.stringify(zone ?? null)}; in UTC it is `
      + `${new Date().toLocaleString('en-GB', { timeZone: 'UTC', timeZoneName: 'short' })}`;
  }
}

// The model asked for tools: run them (only the demo tool is known) and let it answer with the results.
function answerToolCalls(stream) {
  const shown = stream.calls.filter((call) => call?.call);
  const results = shown.map(({ block, call }) => {
    const content = call.name === DEMO_TOOL.name ? runDemoTool(call) : `this page has no tool ${call.name}`;
    addLine(block, 'tool-result', `Result: ${content}`);
    return { role: 'TOOL', toolCallId: call.id, content };
  });
  const turn = { role: 'ASSISTANT', toolCalls: shown.map(({ call }) => call) };
  if (stream.answer) turn.content = stream.answer;
  ask(stream.text, { ...stream.input, messages: [...stream.input.messages, turn, ...results] });
}

function setAnswer(stream, text) {
  stream.answer = text;
  changeTranscript(() => {
    stream.item.querySelector('.content').textContent = text;
  });
}

function onEvent(stream, event) {
  const item = stream.item;
  switch (event.__typename) {
    case 'ChatStreamStart':
      item.querySelector('.role').textContent = `Assistant · ${event.servedBy.name}`;
      break;
    case 'ChatStreamDelta':
      item.classList.remove('pending');
      setAnswer(stream, stream.answer + event.text);
      break;
    case 'ChatStreamToolCallDelta': {
      const shown = toolCallBlock(stream, event.index);
      shown.text += event.argumentsDelta;
      if (event.name) shown.caption.textContent = `Tool call · ${event.name}`;
      changeTranscript(() => { shown.args.textContent = shown.text; });
      break;
    }
    case 'ChatStreamToolCall': {
      const shown = toolCallBlock(stream, event.index);
      shown.call = event.toolCall;
      changeTranscript(() => {
        shown.caption.textContent = `Tool call · ${event.toolCall.name}`;
        shown.args.textContent = prettyArguments(event.toolCall.arguments);
      });
      break;
    }
    case 'ChatStreamReset':
      // The model failed after sending text; the rest comes from a fallback, from the start.
      stream.reset = true;
      setAnswer(stream, '');
      for (const shown of stream.calls) shown?.block.remove();
      stream.calls = [];
      item.querySelector('.role').textContent = `Assistant · ${event.servedBy.name}`;
      addLine(item, 'note', `Switched to ${event.servedBy.name} after an error (${event.reason}).`);
      break;
    case 'ChatStreamEnd': {
      const { usage } = event;
      for (const warning of event.warnings) {
        // A reset already said which model took over.
        if (!(warning.code === 'FALLBACK_USED' && stream.reset)) addLine(item, 'note', warning.message);
      }
      stream.finishReason = event.finishReason;
      if (!['STOP', 'TOOL_CALLS'].includes(event.finishReason)) {
        addLine(item, 'note', `Finished early: ${event.finishReason}.`);
      }
      addLine(item, 'usage', `${usage.totalTokens} tokens (${usage.inputTokens} in, `
        + `${usage.outputTokens} out) · ${creditsText(usage.credits)}`);
      break;
    }
    case 'ChatStreamError': {
      let text = `Could not answer: ${event.message} (${event.code}).`;
      if (event.retryable) text += event.retryAfter ? ` Try again in ${event.retryAfter} s.` : ' Try again.';
      fail(stream, text);
      break;
    }
    default:
      break;
  }
}

function fail(stream, text) {
  stream.item.classList.remove('pending');
  addLine(stream.item, 'error', text).setAttribute('role', 'alert');
}

function finish(stream, note) {
  if (stream.finished) return;
  stream.finished = true;
  if (note) addLine(stream.item, 'note', note);
  stream.item.classList.remove('pending');
  if (state.stream === stream) state.stream = null;
  if (stream.finishReason === 'TOOL_CALLS' && !note) {
    answerToolCalls(stream); // the same question goes on, with the tools' results
    return;
  }
  if (stream.answer) {
    // The history holds what the user saw, so the next turn continues this conversation.
    state.history = [...stream.input.messages, { role: 'ASSISTANT', content: stream.answer }];
  } else if (!$('message').value && !stream.calls.length) {
    $('message').value = stream.text; // nothing came back: offer the question again
  }
  $('transcript').removeAttribute('aria-busy');
  updateButtons();
}

function stopStream(note) {
  const stream = state.stream;
  if (!stream) return;
  stream.unsubscribe();
  finish(stream, note);
}

// ---- Wiring ------------------------------------------------------------------------------------------

$('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const key = $('api-key').value.trim();
  if (key) connect(key);
});
$('forget-key').addEventListener('click', forgetKey);
$('change-key').addEventListener('click', () => {
  showKeyEntry(true);
  $('api-key').select();
});
$('settings-toggle').addEventListener('click', () => {
  foldSettings($('settings-toggle').getAttribute('aria-expanded') === 'true');
});
$('project').addEventListener('change', projectChanged);
$('model').addEventListener('change', () => {
  showModelInfo();
  updateButtons();
  updateSettingsSummary();
});
$('new-chat').addEventListener('click', () => {
  stopStream('Stopped.');
  state.history = [];
  clearTranscript();
  $('message').focus();
});
$('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  send();
});
$('stop').addEventListener('click', () => {
  stopStream('Stopped.');
  $('message').focus();
});
$('message').addEventListener('keydown', (event) => {
  // Enter sends, Shift+Enter is a new line; not while an input method is composing a character.
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    if (!$('send').disabled) send();
  } else if (event.key === 'Escape' && state.stream) {
    stopStream('Stopped.');
  }
});

const savedKey = sessionStorage.getItem(KEY_STORAGE);
if (savedKey) {
  $('api-key').value = savedKey;
  connect(savedKey);
}
