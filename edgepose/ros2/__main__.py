"""``python -m edgepose.ros2 --ros-args -p model:=pose.onnx -p detector:=yolox.onnx``: run the ROS 2 node."""

import sys

from edgepose.ros2.node import cli

sys.exit(cli())
