// Modelgate's GraphiQL: the pinned GraphiQL, React and explorer bundles served beside this file (no CDN).
// The key comes from the field above GraphiQL, is kept in this tab's sessionStorage (as on the chat
// page), and goes only to this server: as X-API-Key on HTTP and in connection_init ({"apiKey": …}) on
// the graphql-transport-ws socket that runs subscriptions.
'use strict';

const KEY_STORAGE = 'modelgate.apiKey'; // the chat page's name: one key per tab for both pages

const EXAMPLE = `# Modelgate GraphiQL. Paste your key above, then run this (Ctrl-Enter):
query Models {
  availableModels(modelGroup: CHAT) { name provider lifecycleState accessTier }
}

# Subscriptions run over graphql-transport-ws, for example:
# subscription Chat {
#   chatStream(input: {messages: [{role: USER, content: "Hello!"}]}) {
#     __typename
#     ... on ChatStreamDelta { text }
#     ... on ChatStreamEnd { usage { totalTokens credits } }
#     ... on ChatStreamError { code message }
#   }
# }
`;

// The page is served at the GraphQL endpoint itself.
const endpoint = `${window.location.origin}${window.location.pathname}`;
const socketEndpoint = endpoint.replace(/^http/, 'ws');

function createFetcher(key) {
  return GraphiQL.createFetcher({
    url: endpoint,
    subscriptionUrl: socketEndpoint,
    headers: key ? { 'X-API-Key': key } : {},
    wsConnectionParams: key ? { apiKey: key } : {},
    fetch: (url, init) => window.fetch(url, { ...init, credentials: 'omit' }),
  });
}

const keyInput = document.getElementById('mg-api-key');
const keyStatus = document.getElementById('mg-key-status');
const explorer = GraphiQLPluginExplorer.explorerPlugin();
const root = ReactDOM.createRoot(document.getElementById('graphiql'));
const initialQuery = new URLSearchParams(window.location.search).get('query') || EXAMPLE;

// A new fetcher makes GraphiQL fetch the schema again, now with the new key.
function render(key) {
  keyStatus.textContent = key
    ? 'Key set for this tab: sent as X-API-Key and in connection_init.'
    : 'No key: paste one to run operations.';
  keyStatus.dataset.state = key ? 'set' : 'none';
  root.render(
    React.createElement(GraphiQL, {
      fetcher: createFetcher(key),
      defaultQuery: initialQuery,
      plugins: [explorer],
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      inputValueDeprecation: true,
    }),
  );
}

document.getElementById('mg-key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const key = keyInput.value.trim();
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
  keyInput.value = '';
  render(key);
});

document.getElementById('mg-forget-key').addEventListener('click', () => {
  sessionStorage.removeItem(KEY_STORAGE);
  keyInput.value = '';
  render('');
});

render(sessionStorage.getItem(KEY_STORAGE) || '');
