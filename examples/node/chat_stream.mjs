// Stream a chat answer over WebSocket (graphql-transport-ws) with the graphql-ws client.
//
//   npm ci --prefix examples/node
//   node examples/node/chat_stream.mjs ws://127.0.0.1:8000/graphql "$KEY" "Hello!"
import WebSocket from 'ws'; // Node 20 has no global WebSocket
import { createClient } from 'graphql-ws';

const [url = 'ws://127.0.0.1:8000/graphql', apiKey, message = 'Hello!'] = process.argv.slice(2);

const CHAT_STREAM = `subscription($input: ChatInput!) { chatStream(input: $input) {
  __typename
  ... on ChatStreamStart { servedBy { name } }
  ... on ChatStreamDelta { text }
  ... on ChatStreamReset { reason servedBy { name } }
  ... on ChatStreamEnd { finishReason usage { totalTokens credits } }
  ... on ChatStreamError { code message }
} }`;

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { apiKey }, // the connection_init payload; a refused key closes with 4403
  retryAttempts: 0,
});

try {
  const input = { messages: [{ role: 'USER', content: message }] };
  for await (const result of client.iterate({ query: CHAT_STREAM, variables: { input } })) {
    if (result.errors) throw new Error(result.errors.map((e) => e.message).join('; '));
    const event = result.data.chatStream;
    switch (event.__typename) {
      case 'ChatStreamStart': process.stdout.write(`${event.servedBy.name}: `); break;
      case 'ChatStreamDelta': process.stdout.write(event.text); break;
      case 'ChatStreamReset': process.stdout.write(`\n[failed over to ${event.servedBy.name}]\n`); break;
      case 'ChatStreamEnd':
        console.log(`\n[${event.finishReason}, ${event.usage.totalTokens} tokens, ${event.usage.credits} credits]`);
        break;
      case 'ChatStreamError': console.log(`\n[${event.code}: ${event.message}]`); process.exitCode = 1; break;
    }
  }
} catch (error) {
  // graphql-ws rejects with the socket's CloseEvent when the server closes it (4403: bad key).
  console.error(error.code ? `closed: ${error.code} ${error.reason}` : error.message);
  process.exitCode = 1;
} finally {
  await client.dispose();
}
