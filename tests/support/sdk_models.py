"""The pydantic models the REST tests hand to the openai SDK's helpers: a tool
(`openai.pydantic_function_tool(GetWeather)`) and a response format (`parse(response_format=Forecast)`)."""

from __future__ import annotations

from pydantic import BaseModel


class GetWeather(BaseModel):
    """The weather in a city."""

    city: str
    unit: str


class Forecast(BaseModel):
    city: str
    degrees: float
