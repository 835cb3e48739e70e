"""Stream a chat answer over WebSocket (graphql-transport-ws) with the `gql` client.

.venv/bin/python examples/chat_stream.py ws://127.0.0.1:8000/graphql "$DEMO_PROJECT_KEY" "Hello!"
"""

import asyncio
import sys

from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

CHAT_STREAM = """
subscription($input: ChatInput!) {
  chatStream(input: $input) {
    __typename
    ... on ChatStreamStart { servedBy { name } }
    ... on ChatStreamDelta { text }
    ... on ChatStreamReset { reason }
    ... on ChatStreamEnd { finishReason usage { totalTokens credits } }
    ... on ChatStreamError { code message }
  }
}
"""


async def main(url: str, key: str, message: str) -> None:
    transport = WebsocketsTransport(url=url, init_payload={"apiKey": key})
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        request = GraphQLRequest(
            CHAT_STREAM, variable_values={"input": {"messages": [{"role": "USER", "content": message}]}}
        )
        async for result in session.subscribe(request):
            event = result["chatStream"]
            kind = event["__typename"]
            if kind == "ChatStreamDelta":
                print(event["text"], end="", flush=True)
            elif kind == "ChatStreamReset":
                print(f"\n[failed over: {event['reason']}]")
            elif kind == "ChatStreamEnd":
                print(f"\n[{event['finishReason']}, {event['usage']['totalTokens']} tokens]")
            elif kind == "ChatStreamError":
                print(f"\n[{event['code']}: {event['message']}]")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
