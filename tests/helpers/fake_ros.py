"""A stand-in for ROS 2 (rclpy, sensor_msgs, std_msgs) small enough to run ``edgepose.ros2.node.main`` end to end
where ROS is not installed. ``write_fake_ros(root)`` writes the packages under ``root``; put it on PYTHONPATH.

The fake ``rclpy.spin`` delivers, to every image subscription, each frame of the BGR stack in $FAKE_ROS_FRAMES
(.npy, (T, H, W, 3)) as an rgb8 Image (stamp sec = index + 1, frame_id 'cam'), with an unsupported 'yuv422'
message after the first one, then raises KeyboardInterrupt as Ctrl-C does. ``rclpy.shutdown`` writes what happened
(published messages, logs, subscriptions with their QoS, declared parameters) as JSON to $FAKE_ROS_OUT, and each
published Image as <topic-name>_<n>.npy beside it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

RCLPY = '''
import json, os
import numpy as np
import yaml

STATE = {"ok": False, "overrides": {}, "nodes": []}


def init(args=None):
    args = list(args or [])
    rest = args[args.index("--ros-args") + 1:] if "--ros-args" in args else []
    for flag, value in zip(rest, rest[1:]):
        if flag == "-p":
            name, text = value.split(":=", 1)
            STATE["overrides"][name] = yaml.safe_load(text)
    STATE["ok"] = True


def ok():
    return STATE["ok"]


def spin(node):
    from sensor_msgs.msg import Image
    frames = np.load(os.environ["FAKE_ROS_FRAMES"])
    messages = []
    for i, frame in enumerate(frames):
        msg = Image()
        msg.header.stamp.sec, msg.header.frame_id = i + 1, "cam"
        msg.height, msg.width, msg.encoding, msg.step = frame.shape[0], frame.shape[1], "rgb8", frame.shape[1] * 3
        msg.data = frame[..., ::-1].tobytes()
        messages.append(msg)
        if i == 0:
            bad = Image()
            bad.header.stamp.sec, bad.encoding = 1, "yuv422"
            bad.height, bad.width, bad.step, bad.data = 2, 2, 4, bytes(8)
            messages.append(bad)
    for sub in node.subscriptions:
        for msg in messages:
            sub["callback"](msg)
    raise KeyboardInterrupt


def shutdown():
    if not STATE["ok"]:
        raise RuntimeError("rclpy.shutdown() called twice")
    STATE["ok"] = False
    out = os.environ["FAKE_ROS_OUT"]
    report = {"nodes": []}
    for node in STATE["nodes"]:
        published = {}
        for pub in node.publishers:
            items = published.setdefault(pub.topic, [])
            for msg in pub.published:
                if type(msg).__name__ == "String":
                    items.append({"type": "String", "data": msg.data})
                    continue
                path = os.path.join(os.path.dirname(out), f"{pub.topic.strip('~/')}_{len(items)}.npy")
                np.save(path, np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step))
                items.append({"type": "Image", "encoding": msg.encoding, "height": msg.height, "width": msg.width,
                              "step": msg.step, "is_bigendian": msg.is_bigendian, "frame_id": msg.header.frame_id,
                              "sec": msg.header.stamp.sec, "data_type": type(msg.data).__name__, "npy": path})
        subs = [{"topic": s["topic"], "type": s["type"].__name__,
                 "qos": {k: str(v) for k, v in vars(s["qos"]).items()}} for s in node.subscriptions]
        report["nodes"].append({"name": node.name, "params": node.params, "published": published,
                                "subscriptions": subs, "logs": node.logger.lines, "destroyed": node.destroyed})
    with open(out, "w") as f:
        json.dump(report, f)
'''

NODE = '''
import rclpy


class Parameter:
    def __init__(self, name, value):
        self.name, self.value = name, value


class Logger:
    def __init__(self):
        self.lines = []

    def info(self, text):
        self.lines.append(["info", str(text)])

    def warning(self, text):
        self.lines.append(["warning", str(text)])

    warn = warning

    def error(self, text):
        self.lines.append(["error", str(text)])


class Publisher:
    def __init__(self, msg_type, topic, qos):
        self.msg_type, self.topic, self.qos, self.published = msg_type, topic, qos, []

    def publish(self, msg):
        assert isinstance(msg, self.msg_type), f"{type(msg)} published on a {self.msg_type} topic"
        self.published.append(msg)

    def get_subscription_count(self):
        return 1


class Node:
    def __init__(self, name):
        assert rclpy.STATE["ok"], "rclpy.init() must come first"
        self.name, self.params, self.publishers, self.subscriptions = name, {}, [], []
        self.logger, self.destroyed = Logger(), False
        rclpy.STATE["nodes"].append(self)

    def declare_parameter(self, name, value=None):
        value = rclpy.STATE["overrides"].get(name, value)
        self.params[name] = value
        return Parameter(name, value)

    def get_parameter(self, name):
        return Parameter(name, self.params[name])

    def create_publisher(self, msg_type, topic, qos):
        pub = Publisher(msg_type, topic, qos)
        self.publishers.append(pub)
        return pub

    def create_subscription(self, msg_type, topic, callback, qos):
        self.subscriptions.append({"type": msg_type, "topic": topic, "callback": callback, "qos": qos})

    def get_logger(self):
        return self.logger

    def destroy_node(self):
        self.destroyed = True
'''

QOS = '''
class HistoryPolicy:
    KEEP_LAST, KEEP_ALL = "KEEP_LAST", "KEEP_ALL"


class ReliabilityPolicy:
    RELIABLE, BEST_EFFORT = "RELIABLE", "BEST_EFFORT"


class DurabilityPolicy:
    VOLATILE, TRANSIENT_LOCAL = "VOLATILE", "TRANSIENT_LOCAL"


class QoSProfile:
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)
'''

SENSOR_MSGS = '''
import array


class Time:
    def __init__(self):
        self.sec, self.nanosec = 0, 0


class Header:
    def __init__(self):
        self.stamp, self.frame_id = Time(), ""


class Image:
    def __init__(self):
        self.header, self.height, self.width, self.encoding = Header(), 0, 0, ""
        self.is_bigendian, self.step, self.data = 0, 0, array.array("B")


class CompressedImage:
    def __init__(self):
        self.header, self.format, self.data = Header(), "", array.array("B")
'''

STD_MSGS = '''
class String:
    def __init__(self, data=""):
        self.data = data
'''

FILES = {
    "rclpy/__init__.py": RCLPY,
    "rclpy/node.py": NODE,
    "rclpy/qos.py": QOS,
    "rclpy/executors.py": "class ExternalShutdownException(Exception):\n    pass\n",
    "sensor_msgs/__init__.py": "",
    "sensor_msgs/msg.py": SENSOR_MSGS,
    "std_msgs/__init__.py": "",
    "std_msgs/msg.py": STD_MSGS,
}


def write_fake_ros(root: Path) -> Path:
    """Write the fake packages under ``root`` and return it."""
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root
