"""The cases of ``bench/tool_calls.py``: tools, requests and the accepted values of each call.

Written for this benchmark (no public data set): 30 everyday tools and request templates with
the values they state. Cases are built deterministically from them in five categories, the ones
public leaderboards use:

* ``simple``: one tool offered, the request asks for it;
* ``multiple``: 2-5 tools offered (distractors drawn from other domains and from the same one),
  the request asks for one;
* ``parallel``: the request asks for two calls at once (same tool twice, or two tools);
* ``irrelevance``: 1-4 tools offered and none fits: facts, advice, small talk, questions *about*
  a tool's topic, and near misses (a triangle-area tool for a circle, a length converter for
  money, a flight for a train);
* ``multi_turn``: an earlier call and its result are in the conversation; the next call needs a
  value from that result.

Each expected call maps every parameter it may carry to its accepted values (``None`` in the
list: the parameter may be left out). Strings compare case- and space-insensitively, numbers by
value (AST-style, :func:`call_matches`). Every case has a split, ``dev`` (for tuning) or
``test`` (reported only), fixed by its id.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["CASES", "TOOLBOX", "Case", "call_matches", "calls_match", "cases", "tool_entry"]


def tool_entry(
    name: str, description: str, props: dict[str, Any], required: Sequence[str] | None = None
) -> dict[str, Any]:
    """An OpenAI ``tools`` entry; ``required``: every property unless given."""
    need = list(props) if required is None else list(required)
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": props, "required": need},
        },
    }


def _s(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _n(description: str, integer: bool = False) -> dict[str, Any]:
    return {"type": "integer" if integer else "number", "description": description}


DATE = "a date, YYYY-MM-DD"

TOOLBOX: dict[str, dict[str, Any]] = {
    t["function"]["name"]: t
    for t in [
        tool_entry(
            "get_weather",
            "Current weather and today's forecast for a city.",
            {
                "city": _s("city name"),
                "unit": _s("temperature unit", enum=["celsius", "fahrenheit"], default="celsius"),
            },
            ["city"],
        ),
        tool_entry(
            "set_timer",
            "Start a countdown timer.",
            {
                "minutes": _n("length in minutes", integer=True),
                "label": _s("what the timer is for"),
            },
            ["minutes"],
        ),
        tool_entry(
            "send_email",
            "Send an email to one recipient.",
            {
                "to": _s("recipient email address"),
                "subject": _s("subject line"),
                "body": _s("message text"),
            },
            ["to", "subject", "body"],
        ),
        tool_entry(
            "convert_currency",
            "Convert an amount of money from one currency to another at today's rate.",
            {
                "amount": _n("amount of money"),
                "source": _s("ISO currency code to convert from, e.g. EUR"),
                "target": _s("ISO currency code to convert to, e.g. USD"),
            },
            ["amount", "source", "target"],
        ),
        tool_entry(
            "triangle_area",
            "Area of a triangle from its base and height.",
            {"base": _n("base length"), "height": _n("height")},
            ["base", "height"],
        ),
        tool_entry(
            "circle_area",
            "Area of a circle from its radius.",
            {"radius": _n("radius")},
            ["radius"],
        ),
        tool_entry(
            "convert_length",
            "Convert a length between units (km, mi, m, ft, in, cm).",
            {
                "value": _n("the length"),
                "from_unit": _s("unit to convert from"),
                "to_unit": _s("unit to convert to"),
            },
            ["value", "from_unit", "to_unit"],
        ),
        tool_entry(
            "get_stock_price",
            "Latest share price of a company listed on a stock exchange.",
            {"ticker": _s("stock ticker symbol, e.g. AAPL")},
            ["ticker"],
        ),
        tool_entry(
            "translate_text",
            "Translate a piece of text into another language.",
            {
                "text": _s("the text to translate"),
                "target_language": _s("language to translate into"),
            },
            ["text", "target_language"],
        ),
        tool_entry(
            "book_flight",
            "Book a plane ticket between two cities on a date.",
            {"origin": _s("departure city"), "destination": _s("arrival city"), "date": _s(DATE)},
            ["origin", "destination", "date"],
        ),
        tool_entry(
            "book_hotel",
            "Reserve a hotel room in a city.",
            {
                "city": _s("city"),
                "check_in": _s(DATE),
                "nights": _n("number of nights", integer=True),
            },
            ["city", "check_in", "nights"],
        ),
        tool_entry(
            "create_event",
            "Add an event to the user's calendar.",
            {"title": _s("event title"), "date": _s(DATE), "time": _s("start time, HH:MM")},
            ["title", "date", "time"],
        ),
        tool_entry(
            "add_todo",
            "Add a task to the user's to-do list.",
            {"task": _s("what to do")},
            ["task"],
        ),
        tool_entry(
            "play_song",
            "Play a song on the user's speaker.",
            {"title": _s("song title"), "artist": _s("performer")},
            ["title"],
        ),
        tool_entry(
            "get_local_time",
            "Current local time in a city.",
            {"city": _s("city name")},
            ["city"],
        ),
        tool_entry(
            "calculate_tip",
            "Tip amount for a restaurant bill.",
            {"bill": _n("bill total"), "percent": _n("tip percentage")},
            ["bill", "percent"],
        ),
        tool_entry(
            "calculate_bmi",
            "Body mass index from weight and height.",
            {"weight_kg": _n("weight in kilograms"), "height_m": _n("height in metres")},
            ["weight_kg", "height_m"],
        ),
        tool_entry(
            "send_sms",
            "Send a text message to a phone number.",
            {"phone": _s("phone number"), "message": _s("message text")},
            ["phone", "message"],
        ),
        tool_entry(
            "order_pizza",
            "Order a pizza for delivery.",
            {
                "size": _s("pizza size", enum=["small", "medium", "large"]),
                "topping": _s("main topping"),
            },
            ["size", "topping"],
        ),
        tool_entry(
            "movie_showtimes",
            "Cinema showtimes today for a film in a city.",
            {"movie": _s("film title"), "city": _s("city")},
            ["movie", "city"],
        ),
        tool_entry(
            "track_package",
            "Where a parcel is, from its tracking number.",
            {"tracking_number": _s("the carrier's tracking number")},
            ["tracking_number"],
        ),
        tool_entry(
            "set_thermostat",
            "Set the home thermostat to a temperature in degrees Celsius.",
            {"temperature": _n("target temperature, Celsius")},
            ["temperature"],
        ),
        tool_entry(
            "switch_lights",
            "Turn the lights in a room on or off.",
            {"room": _s("room name"), "state": _s("on or off", enum=["on", "off"])},
            ["room", "state"],
        ),
        tool_entry(
            "define_word",
            "Dictionary definition of an English word.",
            {"word": _s("the word")},
            ["word"],
        ),
        tool_entry(
            "find_user",
            "Look up a customer's account id by their full name.",
            {"name": _s("customer's full name")},
            ["name"],
        ),
        tool_entry(
            "get_orders",
            "List the orders of a customer account.",
            {"user_id": _n("account id", integer=True)},
            ["user_id"],
        ),
        tool_entry(
            "search_contacts",
            "Find a contact's phone number and email address by name.",
            {"name": _s("contact name")},
            ["name"],
        ),
        tool_entry(
            "square_root",
            "Square root of a number.",
            {"number": _n("a non-negative number")},
            ["number"],
        ),
        tool_entry(
            "compound_interest",
            "Final balance of a savings deposit with yearly compound interest.",
            {
                "principal": _n("amount deposited"),
                "rate": _n("yearly interest rate in percent"),
                "years": _n("number of years", integer=True),
            },
            ["principal", "rate", "years"],
        ),
        tool_entry(
            "get_distance",
            "Driving distance in kilometres between two cities.",
            {"origin": _s("start city"), "destination": _s("end city")},
            ["origin", "destination"],
        ),
    ]
}

# the domain of each tool: distractors for ``multiple`` come from other domains and, for some
# cases, the same one
DOMAIN = {
    "get_weather": "info",
    "get_local_time": "info",
    "get_stock_price": "info",
    "define_word": "info",
    "movie_showtimes": "info",
    "get_distance": "info",
    "set_timer": "home",
    "set_thermostat": "home",
    "switch_lights": "home",
    "play_song": "home",
    "send_email": "comms",
    "send_sms": "comms",
    "search_contacts": "comms",
    "translate_text": "comms",
    "convert_currency": "money",
    "calculate_tip": "money",
    "compound_interest": "money",
    "get_stock_price_": "money",
    "triangle_area": "math",
    "circle_area": "math",
    "square_root": "math",
    "convert_length": "math",
    "calculate_bmi": "math",
    "book_flight": "travel",
    "book_hotel": "travel",
    "create_event": "organise",
    "add_todo": "organise",
    "order_pizza": "shop",
    "track_package": "shop",
    "find_user": "shop",
    "get_orders": "shop",
}

Accepted = dict[str, list[Any]]
Expect = Callable[[dict[str, Any]], Accepted]


@dataclasses.dataclass(frozen=True)
class Request:
    """A way of asking one tool, with the values it states and the call they imply."""

    tool: str
    templates: tuple[str, ...]
    values: tuple[dict[str, Any], ...]
    expect: Expect


def _r(
    tool: str, templates: Sequence[str], values: Sequence[dict[str, Any]], expect: Expect
) -> Request:
    return Request(tool, tuple(templates), tuple(values), expect)


CELSIUS = [None, "celsius"]

REQUESTS: list[Request] = [
    _r(
        "get_weather",
        [
            "What's the weather like in {city} right now?",
            "Do I need an umbrella in {city} today?",
            "weather in {city}?",
            "Is it cold in {city} at the moment?",
            "Check today's forecast for {city}, please.",
        ],
        [
            {"city": c}
            for c in [
                "Lisbon",
                "Glasgow",
                "Osaka",
                "Nairobi",
                "Quito",
                "Tromsø",
                "Denver",
                "Hanoi",
                "Porto",
                "Cork",
            ]
        ],
        lambda v: {"city": [v["city"]], "unit": CELSIUS},
    ),
    _r(
        "get_weather",
        [
            "What's the temperature in {city} in Fahrenheit?",
            "Weather for {city}, in fahrenheit please.",
        ],
        [{"city": c} for c in ["Boston", "Seville", "Perth", "Calgary"]],
        lambda v: {"city": [v["city"]], "unit": ["fahrenheit"]},
    ),
    _r(
        "set_timer",
        [
            "Set a timer for {m} minutes.",
            "Start a {m} minute countdown.",
            "timer {m} min please",
            "Can you time {m} minutes for me?",
        ],
        [{"m": m} for m in [3, 12, 25, 45, 90, 7, 18, 60]],
        lambda v: {"minutes": [v["m"]], "label": [None]},
    ),
    _r(
        "set_timer",
        ["Set a {m} minute timer for the {what}.", "Start a timer: {m} minutes, for the {what}."],
        [
            {"m": 4, "what": "eggs"},
            {"m": 30, "what": "laundry"},
            {"m": 8, "what": "pasta"},
            {"m": 15, "what": "bread"},
        ],
        lambda v: {"minutes": [v["m"]], "label": [None, v["what"], f"the {v['what']}"]},
    ),
    _r(
        "send_email",
        [
            "Email {to} with the subject '{subject}' and the text '{body}'",
            "Send a mail to {to}, subject {subject}, saying: {body}",
            "Please write to {to}: subject '{subject}', body '{body}'",
        ],
        [
            {"to": "maria@example.org", "subject": "Invoice", "body": "Paid today, thanks."},
            {"to": "ops@acme.io", "subject": "Outage", "body": "The database is back up."},
            {"to": "tom.h@example.com", "subject": "Saturday", "body": "Are we still on for 10?"},
            {"to": "dana@example.net", "subject": "Keys", "body": "I left the keys at reception."},
            {"to": "li.wei@example.cn", "subject": "Slides", "body": "The slides are attached."},
            {"to": "hr@corp.example", "subject": "Leave", "body": "I am off on Friday."},
        ],
        lambda v: {"to": [v["to"]], "subject": [v["subject"]], "body": ["*"]},
    ),
    _r(
        "convert_currency",
        [
            "How much is {amount} {src_word} in {dst_word}?",
            "Convert {amount} {src} to {dst}.",
            "What do {amount} {src} come to in {dst}?",
        ],
        [
            {
                "amount": 250,
                "src": "EUR",
                "dst": "USD",
                "src_word": "euros",
                "dst_word": "US dollars",
            },
            {"amount": 1200, "src": "JPY", "dst": "GBP", "src_word": "yen", "dst_word": "pounds"},
            {
                "amount": 80,
                "src": "CHF",
                "dst": "EUR",
                "src_word": "Swiss francs",
                "dst_word": "euros",
            },
            {
                "amount": 19.99,
                "src": "USD",
                "dst": "CAD",
                "src_word": "US dollars",
                "dst_word": "Canadian dollars",
            },
            {
                "amount": 500,
                "src": "GBP",
                "dst": "INR",
                "src_word": "pounds",
                "dst_word": "Indian rupees",
            },
            {
                "amount": 75.5,
                "src": "AUD",
                "dst": "NZD",
                "src_word": "Australian dollars",
                "dst_word": "New Zealand dollars",
            },
        ],
        lambda v: {"amount": [v["amount"]], "source": [v["src"]], "target": [v["dst"]]},
    ),
    _r(
        "triangle_area",
        [
            "What is the area of a triangle with base {b} and height {h}?",
            "Compute the area of a triangle: base {b} cm, height {h} cm.",
            "triangle, base {b}, height {h}: area?",
        ],
        [
            {"b": 4, "h": 6},
            {"b": 10, "h": 3.5},
            {"b": 7, "h": 12},
            {"b": 2.5, "h": 8},
            {"b": 15, "h": 9},
        ],
        lambda v: {"base": [v["b"]], "height": [v["h"]]},
    ),
    _r(
        "circle_area",
        [
            "What is the area of a circle with radius {r}?",
            "Area of a circle of radius {r} metres?",
            "circle area, r = {r}",
        ],
        [{"r": 3}, {"r": 7.5}, {"r": 12}, {"r": 0.5}],
        lambda v: {"radius": [v["r"]]},
    ),
    _r(
        "convert_length",
        ["Convert {v} {fw} to {tw}.", "How many {tw} are {v} {fw}?", "{v} {fu} in {tu}?"],
        [
            {"v": 5, "fu": "km", "tu": "mi", "fw": "kilometres", "tw": "miles"},
            {"v": 12, "fu": "in", "tu": "cm", "fw": "inches", "tw": "centimetres"},
            {"v": 300, "fu": "ft", "tu": "m", "fw": "feet", "tw": "metres"},
            {"v": 26.2, "fu": "mi", "tu": "km", "fw": "miles", "tw": "kilometres"},
        ],
        lambda v: {
            "value": [v["v"]],
            "from_unit": [v["fu"], v["fw"], v["fw"].rstrip("s"), v["fw"].replace("metre", "meter")],
            "to_unit": [v["tu"], v["tw"], v["tw"].rstrip("s"), v["tw"].replace("metre", "meter")],
        },
    ),
    _r(
        "get_stock_price",
        [
            "What's the share price of {co} ({t})?",
            "Stock price for {t}?",
            "How is {t} trading right now?",
        ],
        [
            {"co": "Apple", "t": "AAPL"},
            {"co": "Microsoft", "t": "MSFT"},
            {"co": "Tesla", "t": "TSLA"},
            {"co": "Nvidia", "t": "NVDA"},
            {"co": "Amazon", "t": "AMZN"},
        ],
        lambda v: {"ticker": [v["t"]]},
    ),
    _r(
        "translate_text",
        [
            "Translate '{text}' into {lang}.",
            "How do you say '{text}' in {lang}? Please translate it.",
            "Translate to {lang}: {text}",
        ],
        [
            {"text": "good morning", "lang": "Spanish"},
            {"text": "Where is the train station?", "lang": "German"},
            {"text": "thank you very much", "lang": "Japanese"},
            {"text": "The meeting is at noon.", "lang": "French"},
            {"text": "I love this city", "lang": "Italian"},
        ],
        lambda v: {"text": [v["text"]], "target_language": [v["lang"]]},
    ),
    _r(
        "book_flight",
        [
            "Book a flight from {o} to {d} on {date}.",
            "I need a plane ticket {o} -> {d}, {date}.",
            "Fly me from {o} to {d} on {date}, please book it.",
        ],
        [
            {"o": "Madrid", "d": "Oslo", "date": "2025-03-14"},
            {"o": "Chicago", "d": "Miami", "date": "2025-07-02"},
            {"o": "Delhi", "d": "Dubai", "date": "2025-11-20"},
            {"o": "Paris", "d": "Rome", "date": "2025-05-09"},
        ],
        lambda v: {"origin": [v["o"]], "destination": [v["d"]], "date": [v["date"]]},
    ),
    _r(
        "book_hotel",
        [
            "Reserve a hotel in {city} from {date} for {n} nights.",
            "Book me a room in {city}, check-in {date}, {n} nights.",
        ],
        [
            {"city": "Vienna", "date": "2025-04-01", "n": 3},
            {"city": "Kyoto", "date": "2025-10-12", "n": 5},
            {"city": "Lima", "date": "2025-02-20", "n": 2},
            {"city": "Prague", "date": "2025-08-15", "n": 4},
        ],
        lambda v: {"city": [v["city"]], "check_in": [v["date"]], "nights": [v["n"]]},
    ),
    _r(
        "create_event",
        [
            "Put '{title}' in my calendar on {date} at {time}.",
            "Add a calendar event {title}, {date}, {time}.",
        ],
        [
            {"title": "Dentist", "date": "2025-06-03", "time": "09:30"},
            {"title": "Team lunch", "date": "2025-01-17", "time": "12:00"},
            {"title": "Piano lesson", "date": "2025-09-08", "time": "17:15"},
            {"title": "Call with Sam", "date": "2025-03-21", "time": "15:45"},
        ],
        lambda v: {"title": [v["title"]], "date": [v["date"]], "time": [v["time"]]},
    ),
    _r(
        "add_todo",
        [
            "Add '{task}' to my to-do list.",
            "Put {task} on my todo list.",
            "Remind me on my task list to {task}.",
        ],
        [
            {"task": t}
            for t in [
                "buy milk",
                "call the plumber",
                "renew my passport",
                "water the plants",
                "pay the rent",
            ]
        ],
        lambda v: {"task": [v["task"]]},
    ),
    _r(
        "play_song",
        ["Play {title} by {artist}.", "Put on the song {title} by {artist}, please."],
        [
            {"title": "Yesterday", "artist": "The Beatles"},
            {"title": "Hallelujah", "artist": "Leonard Cohen"},
            {"title": "Blue in Green", "artist": "Miles Davis"},
            {"title": "Dancing Queen", "artist": "ABBA"},
        ],
        lambda v: {"title": [v["title"]], "artist": [None, v["artist"]]},
    ),
    _r(
        "get_local_time",
        [
            "What time is it in {city} now?",
            "Current local time in {city}?",
            "what's the time in {city}",
        ],
        [{"city": c} for c in ["Tokyo", "Sydney", "Reykjavik", "Chicago", "Cairo"]],
        lambda v: {"city": [v["city"]]},
    ),
    _r(
        "calculate_tip",
        [
            "What's a {p}% tip on a {b} dollar bill?",
            "Calculate the tip for a bill of {b} at {p} percent.",
        ],
        [{"b": 84, "p": 15}, {"b": 42.5, "p": 20}, {"b": 120, "p": 18}, {"b": 63, "p": 10}],
        lambda v: {"bill": [v["b"]], "percent": [v["p"]]},
    ),
    _r(
        "calculate_bmi",
        [
            "What's my BMI? I weigh {w} kg and I'm {h} m tall.",
            "Compute the BMI for {w} kg and {h} metres.",
        ],
        [{"w": 70, "h": 1.75}, {"w": 58, "h": 1.62}, {"w": 92, "h": 1.88}],
        lambda v: {"weight_kg": [v["w"]], "height_m": [v["h"]]},
    ),
    _r(
        "send_sms",
        ["Text {phone}: {msg}", "Send an SMS to {phone} saying '{msg}'."],
        [
            {"phone": "+44 7700 900123", "msg": "Running 10 minutes late"},
            {"phone": "555-0142", "msg": "Dinner is ready"},
            {"phone": "+1 202 555 0178", "msg": "Call me back please"},
        ],
        lambda v: {"phone": [v["phone"]], "message": [v["msg"]]},
    ),
    _r(
        "order_pizza",
        ["Order a {size} {top} pizza.", "I'd like a {size} pizza with {top}, please order it."],
        [
            {"size": "large", "top": "mushroom"},
            {"size": "small", "top": "pepperoni"},
            {"size": "medium", "top": "ham"},
        ],
        lambda v: {"size": [v["size"]], "topping": [v["top"]]},
    ),
    _r(
        "movie_showtimes",
        ["When is {movie} showing in {city} today?", "Showtimes for {movie} in {city}?"],
        [
            {"movie": "Dune", "city": "Leeds"},
            {"movie": "Oppenheimer", "city": "Austin"},
            {"movie": "Inside Out 2", "city": "Dublin"},
        ],
        lambda v: {"movie": [v["movie"]], "city": [v["city"]]},
    ),
    _r(
        "track_package",
        ["Where is my parcel {n}?", "Track package {n} for me.", "Any update on shipment {n}?"],
        [
            {"n": n}
            for n in ["1Z999AA10123456784", "JD014600006251", "LX452390815CN", "9400111899223344"]
        ],
        lambda v: {"tracking_number": [v["n"]]},
    ),
    _r(
        "set_thermostat",
        [
            "Set the thermostat to {t} degrees.",
            "Make it {t} °C in the house.",
            "heating to {t} please",
        ],
        [{"t": t} for t in [21, 19.5, 23, 17]],
        lambda v: {"temperature": [v["t"]]},
    ),
    _r(
        "switch_lights",
        ["Turn {state} the lights in the {room}.", "Switch the {room} lights {state}."],
        [
            {"room": "kitchen", "state": "on"},
            {"room": "bedroom", "state": "off"},
            {"room": "garage", "state": "on"},
            {"room": "living room", "state": "off"},
        ],
        lambda v: {"room": [v["room"], f"the {v['room']}"], "state": [v["state"]]},
    ),
    _r(
        "define_word",
        [
            "Define the word '{w}'.",
            "What does {w} mean? Look it up in the dictionary.",
            "dictionary: {w}",
        ],
        [{"w": w} for w in ["ephemeral", "ubiquitous", "serendipity", "laconic"]],
        lambda v: {"word": [v["w"]]},
    ),
    _r(
        "find_user",
        ["Look up the account id of {name}.", "What is the customer id for {name}?"],
        [{"name": n} for n in ["Ann Lee", "Carlos Ruiz", "Priya Nair"]],
        lambda v: {"name": [v["name"]]},
    ),
    _r(
        "get_orders",
        ["List the orders of account {id}.", "Show me what customer {id} has ordered."],
        [{"id": i} for i in [4471, 1029, 88310]],
        lambda v: {"user_id": [v["id"]]},
    ),
    _r(
        "search_contacts",
        ["Find {name}'s phone number.", "Look up {name} in my contacts."],
        [{"name": n} for n in ["Jonas Berg", "Aiko Tanaka", "Fatima Diallo"]],
        lambda v: {"name": [v["name"]]},
    ),
    _r(
        "square_root",
        ["What is the square root of {x}?", "sqrt of {x}?", "Compute the square root of {x}."],
        [{"x": x} for x in [144, 2, 1764, 0.25]],
        lambda v: {"number": [v["x"]]},
    ),
    _r(
        "compound_interest",
        [
            "If I deposit {p} at {r}% a year for {y} years, what will I have?",
            "Compound interest on {p} at {r} percent over {y} years?",
        ],
        [{"p": 1000, "r": 5, "y": 10}, {"p": 2500, "r": 3.5, "y": 4}, {"p": 800, "r": 2, "y": 20}],
        lambda v: {"principal": [v["p"]], "rate": [v["r"]], "years": [v["y"]]},
    ),
    _r(
        "get_distance",
        ["How far is it to drive from {o} to {d}?", "Driving distance between {o} and {d}?"],
        [
            {"o": "Berlin", "d": "Munich"},
            {"o": "Lyon", "d": "Marseille"},
            {"o": "Toronto", "d": "Ottawa"},
        ],
        lambda v: {"origin": [v["o"]], "destination": [v["d"]]},
    ),
]

# (request, tools offered): questions no offered tool can answer. Near misses first: the offered
# tool is about the same thing but cannot do what is asked.
NEAR_MISSES: list[tuple[str, list[str]]] = [
    ("What is the area of a circle with radius 4?", ["triangle_area"]),
    ("Area of a circle whose radius is 2.5 cm?", ["triangle_area", "square_root"]),
    ("What is the area of a triangle with base 6 and height 2?", ["circle_area"]),
    ("What's the area of a rectangle 3 by 8?", ["triangle_area", "circle_area"]),
    ("How many miles is 250 euros?", ["convert_length"]),
    ("Convert 100 US dollars to euros.", ["convert_length"]),
    ("Convert 30 kilograms to pounds.", ["convert_length", "convert_currency"]),
    ("Convert 70 degrees Fahrenheit to Celsius.", ["convert_length"]),
    ("Book a train from Paris to Lyon on 2025-05-01.", ["book_flight"]),
    ("Rent me a car in Madrid for 3 days.", ["book_hotel", "book_flight"]),
    ("What was the weather in Lisbon on 1 January 1990?", ["get_local_time"]),
    ("What's the cube root of 27?", ["square_root"]),
    ("What is 17 times 23?", ["square_root"]),
    ("Send a letter by post to my grandmother in Leeds.", ["send_email"]),
    ("Call my dentist.", ["send_sms", "search_contacts"]),
    ("What's the time difference between Tokyo and London?", ["get_weather"]),
    ("What will the weather be in Oslo next month?", ["get_local_time", "set_timer"]),
    ("Set an alarm for 6:30 tomorrow morning.", ["set_thermostat"]),
    ("Turn up the music volume.", ["switch_lights", "set_thermostat"]),
    ("Order sushi for two.", ["order_pizza"]),
    ("What is the price of a Bitcoin?", ["calculate_tip"]),
    ("What's the BMI formula?", ["calculate_bmi"]),
    ("What is a good tip percentage in Japan?", ["calculate_tip"]),
    ("Translate this page's HTML into Markdown.", ["translate_text"]),
    ("Where is the Eiffel Tower?", ["get_distance"]),
    ("Delete the event 'Dentist' from my calendar.", ["create_event"]),
    ("Remove 'buy milk' from my to-do list.", ["add_todo"]),
    ("Who sang Yesterday?", ["play_song"]),
    ("What's the synonym of happy?", ["translate_text"]),
    ("Cancel my hotel booking in Vienna.", ["book_hotel"]),
    ("How tall is Mount Everest in feet?", ["convert_length"]),
    ("Cancel my order 4471.", ["get_orders", "find_user"]),
    ("What is the interest rate at my bank?", ["compound_interest"]),
    ("Which films won the Oscar this year?", ["movie_showtimes"]),
    ("Is 97 a prime number?", ["square_root", "circle_area"]),
    ("Return the parcel I got yesterday.", ["track_package"]),
]

# requests for facts, advice, writing, small talk, and questions about a tool's topic
CHAT: list[str] = [
    "Who wrote Pride and Prejudice?",
    "Give me three tips for sleeping better.",
    "What is the difference between weather and climate?",
    "Write a haiku about autumn leaves.",
    "How do I politely decline a meeting invitation?",
    "Hi! How are you today?",
    "Explain what an exchange rate is, in two sentences.",
    "Why do people set timers when cooking pasta?",
    "What is the capital of Australia?",
    "Tell me a joke about cats.",
    "Thanks, that was helpful!",
    "How does a thermostat work?",
    "What's the best way to learn a new language?",
    "Summarise the plot of Hamlet in one sentence.",
    "Why is the sky blue?",
    "Can you recommend a good book about history?",
    "What are the health benefits of walking?",
    "How do airplanes stay in the air?",
    "Good night!",
    "What does a stock market index measure?",
    "Is it rude to text during dinner?",
    "What should I pack for a beach holiday?",
    "How many continents are there?",
    "Write a short thank-you note to my teacher.",
    "What is photosynthesis?",
    "Who painted the Mona Lisa?",
    "How do I make pancakes?",
    "What's your name?",
    "Explain what a BMI is.",
    "When did the Second World War end?",
    "Why do we have time zones?",
    "How do I write a good email subject line?",
    "What is the boiling point of water?",
    "Give me a fun fact about octopuses.",
    "What are the rules of chess castling?",
    "How can I save money on groceries?",
]

# chains: (first request, first tool and args, its result, follow-up, next tool, accepted args)
CHAINS: list[tuple[str, str, dict[str, Any], str, str | None, str, Accepted]] = []


def _chain(
    first: str,
    tool: str,
    args: dict[str, Any],
    result: str,
    follow: str | None,
    next_tool: str,
    accepted: Accepted,
) -> None:
    CHAINS.append((first, tool, args, result, follow, next_tool, accepted))


for _name, _uid in [
    ("Ann Lee", 4471),
    ("Carlos Ruiz", 1029),
    ("Priya Nair", 88310),
    ("Tom Okafor", 5523),
    ("Mia Jensen", 7001),
]:
    _chain(
        f"Look up {_name}'s account id.",
        "find_user",
        {"name": _name},
        f'{{"user_id": {_uid}}}',
        "Now list that customer's orders.",
        "get_orders",
        {"user_id": [_uid]},
    )
    _chain(
        f"Find the account of {_name} and show me their orders.",
        "find_user",
        {"name": _name},
        f'{{"user_id": {_uid}}}',
        None,
        "get_orders",
        {"user_id": [_uid]},
    )
for _n, _city in [
    ("1Z999AA10123456784", "Lyon"),
    ("JD014600006251", "Rotterdam"),
    ("LX452390815CN", "Busan"),
    ("9400111899223344", "Memphis"),
]:
    _chain(
        f"Where is parcel {_n}?",
        "track_package",
        {"tracking_number": _n},
        f'{{"status": "in transit", "city": "{_city}"}}',
        "What's the weather where my parcel is right now?",
        "get_weather",
        {"city": [_city], "unit": CELSIUS},
    )
for _name, _phone, _email in [
    ("Jonas Berg", "+46 70 123 4567", "jonas.berg@example.se"),
    ("Aiko Tanaka", "+81 90 1234 5678", "aiko@example.jp"),
    ("Fatima Diallo", "+221 77 123 45 67", "fatima.d@example.sn"),
    ("Liam Walsh", "+353 85 555 0101", "liam.walsh@example.ie"),
]:
    _chain(
        f"Find {_name} in my contacts.",
        "search_contacts",
        {"name": _name},
        f'{{"phone": "{_phone}", "email": "{_email}"}}',
        "Text them that I'm on my way.",
        "send_sms",
        {"phone": [_phone], "message": ["*"]},
    )
    _chain(
        f"Look up {_name} and email them with the subject 'Hello' saying hi.",
        "search_contacts",
        {"name": _name},
        f'{{"phone": "{_phone}", "email": "{_email}"}}',
        None,
        "send_email",
        {"to": [_email], "subject": ["Hello"], "body": ["*"]},
    )
for _t, _price in [("AAPL", 189.25), ("MSFT", 411.8), ("NVDA", 121.4), ("TSLA", 248.5)]:
    _chain(
        f"What's {_t} trading at?",
        "get_stock_price",
        {"ticker": _t},
        f'{{"ticker": "{_t}", "price": {_price}, "currency": "USD"}}',
        "Convert that price to euros.",
        "convert_currency",
        {"amount": [_price], "source": ["USD"], "target": ["EUR"]},
    )
for _amount, _total in [(250, 271.3), (80, 91.9), (1200, 8.1), (60, 70.25)]:
    _chain(
        f"Convert {_amount} euros to US dollars.",
        "convert_currency",
        {"amount": _amount, "source": "EUR", "target": "USD"},
        f'{{"amount": {_total}, "currency": "USD"}}',
        "What's a 15% tip on that amount?",
        "calculate_tip",
        {"bill": [_total], "percent": [15]},
    )
for _o, _d, _km in [
    ("Berlin", "Munich", 585),
    ("Lyon", "Marseille", 315),
    ("Toronto", "Ottawa", 450),
    ("Porto", "Lisbon", 313),
]:
    _chain(
        f"How far is it from {_o} to {_d} by car?",
        "get_distance",
        {"origin": _o, "destination": _d},
        f'{{"km": {_km}}}',
        "How many miles is that?",
        "convert_length",
        {
            "value": [_km],
            "from_unit": ["km", "kilometres", "kilometers", "kilometre", "kilometer"],
            "to_unit": ["mi", "miles", "mile"],
        },
    )
for _city, _tz in [("Tokyo", "09:15"), ("Sydney", "22:40"), ("Chicago", "06:05")]:
    _chain(
        f"What time is it in {_city}?",
        "get_local_time",
        {"city": _city},
        f'{{"time": "{_tz}"}}',
        "And what's the weather there?",
        "get_weather",
        {"city": [_city], "unit": CELSIUS},
    )


@dataclasses.dataclass(frozen=True)
class Case:
    """One request: the tools offered, the conversation, and the calls a right answer makes
    (none for ``irrelevance``; any order for ``parallel``)."""

    id: str
    category: str
    tools: tuple[str, ...]
    messages: tuple[dict[str, Any], ...]
    expected: tuple[tuple[str, Accepted], ...]
    near_miss: bool = False

    @property
    def split(self) -> str:
        digest = hashlib.sha256(self.id.encode()).digest()[0]
        return "dev" if digest % 5 < 2 else "test"

    def tool_entries(self) -> list[dict[str, Any]]:
        return [TOOLBOX[t] for t in self.tools]


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def _fill(req: Request, template: str, values: dict[str, Any]) -> tuple[str, Accepted]:
    return template.format(**values), req.expect(values)


def _distractors(rng: random.Random, tool: str, k: int, same_domain: bool) -> list[str]:
    dom = DOMAIN.get(tool)
    same = [t for t in TOOLBOX if t != tool and DOMAIN.get(t) == dom]
    other = [t for t in TOOLBOX if t != tool and DOMAIN.get(t) != dom]
    picked: list[str] = []
    if same_domain and same:
        picked.append(rng.choice(same))
    picked += rng.sample([t for t in other if t not in picked], k - len(picked))
    return picked


def cases() -> list[Case]:
    """Every case, built deterministically (seeded) from the tables above."""
    rng = random.Random(22)
    out: list[Case] = []
    # every (request, template, values) triple, shuffled; the first ones go to simple, the
    # next to multiple, so the two categories ask with different values
    triples = [
        (req, tmpl, vals) for req in REQUESTS for tmpl in req.templates for vals in req.values
    ]
    rng.shuffle(triples)
    by_tool: dict[str, list[Any]] = {}
    for t in triples:
        by_tool.setdefault(t[0].tool, []).append(t)
    simple, multiple = [], []
    for tool in sorted(by_tool):
        group = by_tool[tool]
        n = 3 if len(group) >= 12 else 2
        simple += group[:n]
        multiple += group[n : 2 * n + 1]
    for i, (req, tmpl, vals) in enumerate(simple):
        text, acc = _fill(req, tmpl, vals)
        out.append(
            Case(f"simple-{i:03d}", "simple", (req.tool,), (_user(text),), ((req.tool, acc),))
        )
    for i, (req, tmpl, vals) in enumerate(multiple):
        text, acc = _fill(req, tmpl, vals)
        k = rng.randint(1, 4)
        tools = [req.tool, *_distractors(rng, req.tool, k, same_domain=i % 2 == 0)]
        rng.shuffle(tools)
        out.append(
            Case(f"multiple-{i:03d}", "multiple", tuple(tools), (_user(text),), ((req.tool, acc),))
        )
    # parallel: the same tool for two values, or two tools in one request
    joins = ["{a} Also, {b}", "{a} And {b}", "{a} Then {b}"]
    for i in range(40):
        r1 = rng.choice(REQUESTS)
        if i % 2 == 0:
            r2 = r1
            v1, v2 = rng.sample(list(r1.values), 2)
        else:
            r2 = rng.choice([r for r in REQUESTS if r.tool != r1.tool])
            v1, v2 = rng.choice(r1.values), rng.choice(r2.values)
        t1, a1 = _fill(r1, rng.choice(r1.templates), v1)
        t2, a2 = _fill(r2, rng.choice(r2.templates), v2)
        t2 = t2[0].lower() + t2[1:]
        text = rng.choice(joins).format(a=t1, b=t2)
        tools = sorted(
            {r1.tool, r2.tool} | set(_distractors(rng, r1.tool, rng.randint(0, 2), False))
        )
        out.append(
            Case(
                f"parallel-{i:03d}",
                "parallel",
                tuple(tools),
                (_user(text),),
                ((r1.tool, a1), (r2.tool, a2)),
            )
        )
    for i, (text, tools) in enumerate(NEAR_MISSES):
        out.append(
            Case(
                f"irrelevance-near-{i:03d}",
                "irrelevance",
                tuple(tools),
                (_user(text),),
                (),
                near_miss=True,
            )
        )
    for i, text in enumerate(CHAT):
        tools = rng.sample(sorted(TOOLBOX), rng.randint(1, 4))
        out.append(
            Case(f"irrelevance-chat-{i:03d}", "irrelevance", tuple(tools), (_user(text),), ())
        )
    for i, (first, tool, args, result, follow, next_tool, accepted) in enumerate(CHAINS):
        call = {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": tool, "arguments": args},
        }
        msgs: list[dict[str, Any]] = [
            _user(first),
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"call_{i}", "name": tool, "content": result},
        ]
        if follow is not None:
            msgs.append(_user(follow))
        extra = _distractors(rng, next_tool, rng.randint(0, 2), False)
        tools = sorted({tool, next_tool, *extra})
        out.append(
            Case(
                f"multi_turn-{i:03d}",
                "multi_turn",
                tuple(tools),
                tuple(msgs),
                ((next_tool, accepted),),
            )
        )
    return out


def _norm(value: Any) -> str:
    return re.sub(r"\s+", " ", str(value)).strip().strip(".").lower()


def value_ok(value: Any, accepted: Sequence[Any]) -> bool:
    """One argument against its accepted values: ``"*"`` accepts any non-empty value; numbers
    compare by value (``5`` == ``5.0`` == ``"5"``); strings without case or edge spaces."""
    for want in accepted:
        if want is None:
            continue
        if want == "*":
            if str(value).strip():
                return True
            continue
        if isinstance(want, int | float) and not isinstance(want, bool):
            try:
                if abs(float(value) - float(want)) < 1e-6:
                    return True
            except (TypeError, ValueError):
                pass
            continue
        if _norm(value) == _norm(want):
            return True
    return False


def call_matches(name: str, arguments: dict[str, Any], tool: str, accepted: Accepted) -> bool:
    """AST-style: the right function; every parameter it carries is one the case accepts, with
    an accepted value; every parameter that may not be left out is there."""
    if name != tool:
        return False
    for key, value in arguments.items():
        if key not in accepted or not value_ok(value, accepted[key]):
            return False
    return all(key in arguments for key, acc in accepted.items() if None not in acc)


def calls_match(
    calls: Sequence[tuple[str, dict[str, Any]]], expected: Sequence[tuple[str, Accepted]]
) -> bool:
    """All expected calls made, in any order, and nothing else."""
    if len(calls) != len(expected):
        return False
    left = list(expected)
    for name, args in calls:
        hit = next((e for e in left if call_matches(name, args, e[0], e[1])), None)
        if hit is None:
            return False
        left.remove(hit)
    return True


CASES = cases()
