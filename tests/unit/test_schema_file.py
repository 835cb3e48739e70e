"""schema.graphql is the committed SDL: it must be what the code exports."""

from pathlib import Path

from app.api.schema import export_sdl, schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_committed_schema_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text() == export_sdl(), (
        "schema.graphql is out of date: run `make schema` and commit the result"
    )


def test_contract_operation_names_are_present() -> None:
    sdl = schema.as_str()
    for name in (
        "node(id: ID!): Node",
        "viewer: Viewer!",
        "organizations(",
        "organization(id: ID!)",
        "project(id: ID!)",
        "apiKeys(",
        "organizationCreate(input: OrganizationCreateInput!): OrganizationCreatePayload!",
        "organizationUpdate(input: OrganizationUpdateInput!): OrganizationUpdatePayload!",
        "projectCreate(input: ProjectCreateInput!): ProjectCreatePayload!",
        "projectUpdate(input: ProjectUpdateInput!): ProjectUpdatePayload!",
        "projectDelete(input: ProjectDeleteInput!): ProjectDeletePayload!",
        "apiKeyCreate(input: ApiKeyCreateInput!): ApiKeyCreatePayload!",
        "apiKeyRevoke(input: ApiKeyRevokeInput!): ApiKeyRevokePayload!",
    ):
        assert name in sdl, name
