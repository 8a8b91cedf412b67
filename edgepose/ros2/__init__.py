"""edgepose on ROS 2: an rclpy node (``edgepose.ros2.node.main``) around plain-Python parts tested without ROS.

- ``convert``: sensor_msgs/Image and CompressedImage <-> (H, W, 3) uint8 BGR frames (no cv_bridge).
- ``payload``: the JSON the node publishes per frame (std_msgs/String).
- ``core``: ``PoseNodeCore`` (message -> payload + annotated frame, bad frames skipped) and ``NodeConfig``.
- ``node``: the node itself; the only module that imports rclpy, and only when ``main`` runs.
"""
