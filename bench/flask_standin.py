"""A stand-in for the course's reference server, for scripts/bench-wrk to measure against.

Like the course's Flask app: the Flask development server (Werkzeug, threaded, so HTTP/1.1
keep-alive), Flask-SocketIO in its default threading mode, and one route that takes a JSON
list of events and emits it to every Socket.IO client. No validation, no aggregates: the
least a server can do with a POST and still pass it on.

    python bench/flask_standin.py --port 5000
"""

import argparse

from flask import Flask, jsonify, request
from flask_socketio import SocketIO

app = Flask(__name__)
socketio = SocketIO(app, cors_allowed_origins="*", async_mode="threading")


@app.post("/api/events")
def events():
    data = request.get_json()
    if not isinstance(data, list):
        return jsonify({"error": "expected a JSON list"}), 400
    socketio.emit("events", data)
    return jsonify({"received": len(data)}), 200


@app.get("/healthz")
def healthz():
    return "ok\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    # The development server, as the course runs it (threaded is Flask's default).
    socketio.run(app, host=args.host, port=args.port, allow_unsafe_werkzeug=True)
