// One GraphQL client, used as its documentation shows, against a live Modelgate with the demo
// project's key (run by tests/contract/test_client_matrix.py): a query, the `chat` mutation and a
// `chatStream` subscription on the offline ECHO model. Prints what it got as one JSON object:
//   {"query": …, "mutation": …, "stream": [events…]}
//
//   node tests/contract/node/clients.mjs CLIENT http://127.0.0.1:8000/graphql "$KEY"
import { createHash } from 'node:crypto';
import WebSocket from 'ws'; // Node 20 has no global WebSocket
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from '@urql/core';
import { createClient as createSseClient } from 'graphql-sse';
import { createClient as createWsClient } from 'graphql-ws';
import transportWs from 'subscriptions-transport-ws'; // CommonJS
import { onEnd, pipe, subscribe } from 'wonka';

const [client, url, apiKey] = process.argv.slice(2);
const wsUrl = url.replace(/^http/, 'ws');
const headers = { 'X-API-Key': apiKey };

const QUERY = '{ viewer { project { name } } }';
const CHAT = `mutation($input: ChatInput!) {
  chat(input: $input) { message { content } userErrors { code message } } }`;
const CHAT_STREAM = `subscription($input: ChatInput!) { chatStream(input: $input) {
  __typename
  ... on ChatStreamDelta { text }
  ... on ChatStreamEnd { finishReason usage { totalTokens } }
  ... on ChatStreamError { code message }
} }`;
const says = (content) => ({ input: { messages: [{ role: 'USER', content }] } });
const chatVariables = says(`Hello from ${client}`);
const streamVariables = says(`Stream to ${client}`);

function check(result) {
  if (result.errors?.length) throw new Error(JSON.stringify(result.errors));
  return result.data;
}

// Every result's data until completion, from an observer-style `subscribe(observer)`.
function results(subscribeTo) {
  return new Promise((resolve, reject) => {
    const all = [];
    subscribeTo({
      next: (result) => all.push(check(result)),
      error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
      complete: () => resolve(all),
    });
  });
}

async function iterateAll(iterator) {
  const results = [];
  for await (const result of iterator) results.push(check(result));
  return results;
}

function apollo(link) {
  return new ApolloClient({
    link,
    cache: new InMemoryCache({
      possibleTypes: {
        ChatStreamEvent: ['ChatStreamStart', 'ChatStreamDelta', 'ChatStreamReset', 'ChatStreamEnd', 'ChatStreamError'],
      },
    }),
  });
}

async function runApollo(link, { queries = 1 } = {}) {
  const apolloClient = apollo(link);
  let query;
  for (let i = 0; i < queries; i += 1) query = await apolloClient.query({ query: gql(QUERY), fetchPolicy: 'no-cache' });
  const mutation = await apolloClient.mutate({ mutation: gql(CHAT), variables: chatVariables });
  const subscription = apolloClient.subscribe({ query: gql(CHAT_STREAM), variables: streamVariables });
  const stream = (await results((observer) => subscription.subscribe(observer))).map((d) => d.chatStream);
  apolloClient.stop();
  return { query: query.data, mutation: mutation.data, stream };
}

const wsClient = () => createWsClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: { apiKey }, retryAttempts: 0 });

async function runUrql(exchanges, { fetchSubscriptions = false } = {}) {
  const urql = new Client({ url, exchanges, fetchOptions: { headers }, fetchSubscriptions });
  const query = check(await urql.query(QUERY, {}, { requestPolicy: 'network-only' }).toPromise());
  const mutation = check(await urql.mutation(CHAT, chatVariables).toPromise());
  const stream = await new Promise((resolve, reject) => {
    const events = [];
    pipe(
      urql.subscription(CHAT_STREAM, streamVariables),
      onEnd(() => resolve(events)),
      subscribe((result) => {
        if (result.error) reject(result.error);
        else events.push(result.data.chatStream);
      }),
    );
  });
  return { query, mutation, stream };
}

const CLIENTS = {
  // Apollo Client: HttpLink for queries and mutations, GraphQLWsLink (graphql-transport-ws) for subscriptions.
  'apollo-client': () => {
    const http = new HttpLink({ uri: url, headers });
    const ws = new GraphQLWsLink(wsClient());
    return runApollo(ApolloLink.split(({ operationType }) => operationType === 'subscription', ws, http));
  },
  // Apollo Client with automatic persisted queries (hashed queries over GET), on both links; the
  // query runs twice, and every HTTP request is noted in `wire` (method, whether it carried the text,
  // what came back) to show the protocol: not found, the text once, then the hash alone.
  'apollo-client-persisted': async () => {
    const wire = [];
    const notingFetch = async (uri, options) => {
      const carried = options.method === 'GET' ? new URL(uri).searchParams.has('query') : 'query' in JSON.parse(options.body);
      const response = await fetch(uri, options);
      const body = await response.clone().text();
      wire.push({ method: options.method, query: carried, status: response.status, notFound: body.includes('PersistedQueryNotFound') });
      return response;
    };
    const persisted = new PersistedQueryLink({
      sha256: (text) => createHash('sha256').update(text).digest('hex'),
      useGETForHashedQueries: true,
    });
    const http = new HttpLink({ uri: url, headers, fetch: notingFetch });
    const ws = new GraphQLWsLink(wsClient());
    const link = persisted.concat(ApolloLink.split(({ operationType }) => operationType === 'subscription', ws, http));
    return { ...(await runApollo(link, { queries: 2 })), wire };
  },
  // Apollo Client with HttpLink alone: subscriptions as multipart HTTP responses.
  'apollo-client-multipart': () => runApollo(new HttpLink({ uri: url, headers })),
  // urql's default exchanges; subscriptions through its subscriptionExchange over graphql-ws.
  urql: () => {
    const ws = wsClient();
    return runUrql([
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? '' }, sink) }),
        }),
      }),
    ]);
  },
  // urql's fetchExchange running subscriptions itself (GraphQL over SSE or multipart).
  'urql-fetch-subscriptions': () => runUrql([cacheExchange, fetchExchange], { fetchSubscriptions: true }),
  'graphql-sse': () => runSse(false),
  'graphql-sse-single-connection': () => runSse(true),
  'graphql-ws': async () => {
    const ws = wsClient();
    const [query] = await iterateAll(ws.iterate({ query: QUERY }));
    const [mutation] = await iterateAll(ws.iterate({ query: CHAT, variables: chatVariables }));
    const stream = (await iterateAll(ws.iterate({ query: CHAT_STREAM, variables: streamVariables }))).map((d) => d.chatStream);
    await ws.dispose();
    return { query, mutation, stream };
  },
  // The legacy graphql-ws protocol.
  'subscriptions-transport-ws': async () => {
    const legacy = new transportWs.SubscriptionClient(wsUrl, { connectionParams: { apiKey }, reconnect: false }, WebSocket);
    const request = (query, variables) => results((observer) => legacy.request({ query, variables }).subscribe(observer));
    const [query] = await request(QUERY);
    const [mutation] = await request(CHAT, chatVariables);
    const stream = (await request(CHAT_STREAM, streamVariables)).map((d) => d.chatStream);
    legacy.close();
    return { query, mutation, stream };
  },
};

async function runSse(singleConnection) {
  const sse = createSseClient({ url, headers, singleConnection, retryAttempts: 0 });
  const [query] = await iterateAll(sse.iterate({ query: QUERY }));
  const [mutation] = await iterateAll(sse.iterate({ query: CHAT, variables: chatVariables }));
  const stream = (await iterateAll(sse.iterate({ query: CHAT_STREAM, variables: streamVariables }))).map((d) => d.chatStream);
  sse.dispose();
  return { query, mutation, stream };
}

if (!(client in CLIENTS)) {
  console.error(`unknown client ${client}; one of: ${Object.keys(CLIENTS).join(', ')}`);
  process.exit(2);
}
try {
  console.log(JSON.stringify(await CLIENTS[client]()));
  process.exit(0); // some clients keep sockets or timers alive after dispose
} catch (error) {
  console.error(error?.stack ?? String(error));
  process.exit(1);
}
