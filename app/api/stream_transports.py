"""How streamed results are framed: Strawberry's two HTTP stream transports, corrected.

- GraphQL over SSE: Strawberry ends lines with CRLF. The SSE grammar allows it, but some clients'
  parsers (urql's) read LF only, which every parser reads.
- Apollo's multipart subscriptions: every chunk Strawberry writes ends with a delimiter
  (`\\r\\n--graphql`), starting with a heartbeat part; it then closes with a whole delimiter more,
  which leaves an empty part before the end that some multipart readers trip over. The close
  delimiter only needs its `--` after the delimiter already written.
"""

from __future__ import annotations

from strawberry.http.streaming import MultipartSubscriptionTransport, SSETransport


class LineFeedSSETransport(SSETransport):
    def encode_event(self, event: str, data: str | None = None) -> str:
        return super().encode_event(event, data).replace("\r\n", "\n")  # data has no line breaks

    def encode_comment(self, comment: str) -> str:
        return super().encode_comment(comment).replace("\r\n", "\n")


class MultipartSubscriptions(MultipartSubscriptionTransport):
    def encode_complete(self) -> str:
        return "--\r\n"
