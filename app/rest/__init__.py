"""The OpenAI-compatible REST front door (/v1/…): thin handlers over the same services as GraphQL.

Each handler authenticates (`services.auth`), checks the body's shape, names the model, calls the
gateway and renders its result in OpenAI's shape. No policy lives here: lifecycle, plan, quota,
limits, fallbacks and metering all happen in `app.services.gateway`.
"""
