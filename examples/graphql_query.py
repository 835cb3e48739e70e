"""List the models a key may call, then ask one a question, over HTTP with the `gql` client.

.venv/bin/python examples/graphql_query.py http://127.0.0.1:8000/graphql "$KEY"
"""

import asyncio
import sys

from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport

MODELS = """
query {
  viewer { organization { name } project { name } }
  availableModels(modelGroup: CHAT) {
    id name provider lifecycleState accessTier
    ... on UserModel { isDefault }
  }
}
"""
CHAT = """
mutation($input: ChatInput!) {
  chat(input: $input) {
    message { content }
    servedBy { name }
    usage { totalTokens credits }
    userErrors { code message }
  }
}
"""


async def main(url: str, key: str) -> None:
    transport = AIOHTTPTransport(url=url, headers={"X-API-Key": key})
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        result = await session.execute(GraphQLRequest(MODELS))
        viewer = result["viewer"]
        project = viewer["project"]["name"] if viewer["project"] else "no project"
        print(f"{viewer['organization']['name']} / {project}")
        default = None
        for model in result["availableModels"]:
            marker = " (project default)" if model.get("isDefault") else ""
            print(f"  {model['provider']:<18} {model['name']}{marker}")
            if model.get("isDefault"):
                default = model
        if default is None:
            return  # the key has no project default to ask
        messages = [{"role": "USER", "content": "Hello from gql!"}]
        result = await session.execute(
            GraphQLRequest(CHAT, variable_values={"input": {"model": default["id"], "messages": messages}})
        )
        chat = result["chat"]
        if chat["userErrors"]:
            print("errors:", chat["userErrors"])
            return
        print(f"{chat['servedBy']['name']}: {chat['message']['content']}")
        print(f"[{chat['usage']['totalTokens']} tokens, {chat['usage']['credits']} credits]")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))
