"""edgepose as a ROS 2 node: subscribes to an image topic, publishes each frame's keypoints as JSON.

    source /opt/ros/humble/setup.bash
    edgepose-ros2 --ros-args -p model:=pose.onnx -p detector:=yolox_nano.onnx \\
        -p image_topic:=/camera/image_raw -p annotated_topic:=~/annotated

Parameters (``NodeConfig``): model, detector, card, image_topic, compressed, poses_topic (std_msgs/String with the
``edgepose.ros2.payload`` JSON, default '~/poses'), annotated_topic (sensor_msgs/Image bgr8, '' = off), track,
min_cutoff, beta, threads. The image subscription keeps only the newest frame (best effort, depth 1): a node slower
than the camera drops stale frames instead of falling behind. rclpy and the message packages are imported by
``main`` only, so the rest of ``edgepose.ros2`` runs and is tested without ROS.
"""

from __future__ import annotations

import array
import sys
from dataclasses import fields
from types import SimpleNamespace

from edgepose.errors import EdgePoseError, MissingDependencyError
from edgepose.ros2.convert import bgr_to_image_msg_fields
from edgepose.ros2.core import NodeConfig, PoseNodeCore, make_estimator, make_tracker
from edgepose.ros2.payload import payload_to_json

NODE_NAME = "edgepose"
ROS_HINT = ("the edgepose ROS 2 node needs rclpy and the sensor_msgs and std_msgs messages, which come with ROS 2, "
            "not pip: source /opt/ros/<distro>/setup.bash (e.g. humble, jazzy) in this shell, and run a Python that "
            "ROS 2 was built for (a venv made with --system-site-packages)")


def import_ros() -> SimpleNamespace:
    """rclpy, its QoS names and the message classes; MissingDependencyError (with the sourcing hint) without ROS."""
    try:
        import rclpy
        from rclpy.node import Node
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CompressedImage, Image
        from std_msgs.msg import String
    except ImportError as exc:
        raise MissingDependencyError(f"{ROS_HINT} ({exc})") from exc
    try:
        from rclpy.executors import ExternalShutdownException
    except ImportError:  # rclpy before Humble
        ExternalShutdownException = KeyboardInterrupt  # noqa: N806
    stale_frames_dropped = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                                      reliability=ReliabilityPolicy.BEST_EFFORT,
                                      durability=DurabilityPolicy.VOLATILE)
    return SimpleNamespace(rclpy=rclpy, Node=Node, Image=Image, CompressedImage=CompressedImage, String=String,
                           image_qos=stale_frames_dropped, ExternalShutdownException=ExternalShutdownException)


def read_config(node) -> NodeConfig:
    """Declare every NodeConfig field as a ROS parameter (its default gives the type) and read them back."""
    values = {}
    for f in fields(NodeConfig):
        node.declare_parameter(f.name, f.default)
        values[f.name] = node.get_parameter(f.name).value
    return NodeConfig(**values)


def image_message(image_cls, frame, header):
    """A sensor_msgs/Image (bgr8) of ``frame`` with ``header``; data as array('B'), rclpy's fast path."""
    msg = image_cls()
    for name, value in bgr_to_image_msg_fields(frame).items():
        setattr(msg, name, array.array("B", value) if name == "data" else value)
    msg.header = header
    return msg


def wire(node, ros: SimpleNamespace, config: NodeConfig, core: PoseNodeCore) -> None:
    """Create the publishers and the image subscription that runs ``core`` on each frame."""
    poses_pub = node.create_publisher(ros.String, config.poses_topic, 10)
    annotated_pub = node.create_publisher(ros.Image, config.annotated_topic, 1) if config.annotated_topic else None

    def on_image(msg) -> None:
        draw = annotated_pub is not None and annotated_pub.get_subscription_count() > 0  # draw only for a listener
        result = core.process(msg, draw=draw)
        if result is None:
            return
        payload, annotated = result
        poses_pub.publish(ros.String(data=payload_to_json(payload)))
        if annotated is not None:
            annotated_pub.publish(image_message(ros.Image, annotated, msg.header))

    msg_type = ros.CompressedImage if config.compressed else ros.Image
    node.create_subscription(msg_type, config.image_topic, on_image, ros.image_qos)


def main(argv: list[str] | None = None) -> int:
    """Run the node until shutdown (Ctrl-C); ``argv`` is the full command line (default ``sys.argv``).

    Returns 0, or 2 after logging a bad parameter or model; raises MissingDependencyError when ROS 2 is not
    sourced."""
    ros = import_ros()
    ros.rclpy.init(args=argv)
    node = ros.Node(NODE_NAME)
    logger = node.get_logger()
    estimator = core = None
    try:
        config = read_config(node)
        config.validate()
        estimator = make_estimator(config)
        tracker = make_tracker(config, estimator.card.sigmas)
        core = PoseNodeCore(estimator, tracker, compressed=config.compressed, draw=bool(config.annotated_topic),
                            warn=logger.warning)
        wire(node, ros, config, core)
        logger.info(f"edgepose: {config.model} on {config.image_topic} -> {config.poses_topic}"
                    + (f", {config.annotated_topic}" if config.annotated_topic else ""))
        ros.rclpy.spin(node)
    except EdgePoseError as exc:
        logger.error(f"edgepose: {exc}")
        return 2
    except (KeyboardInterrupt, ros.ExternalShutdownException):
        pass
    finally:
        if core is not None:
            logger.info(f"edgepose: {core.frames} images, {core.skipped} skipped")
        if estimator is not None:
            estimator.close()
        node.destroy_node()
        if ros.rclpy.ok():
            ros.rclpy.shutdown()
    return 0


def cli() -> int:
    """Console entry point: ``main`` with a missing ROS 2 reported in one line (exit code 2)."""
    try:
        return main()
    except MissingDependencyError as exc:
        print(f"edgepose-ros2: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(cli())
