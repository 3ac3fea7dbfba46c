//! Containers end to end: disco's image, the compose file and the swarm
//! stack in docker/, run on a real Docker engine; and the glibc resolver of
//! a network namespace pointed at disco. The Docker tests fail, never skip,
//! when `docker info` does; they make their base images from Debian's
//! packages (docker/test/base-images.sh) since no registry is reached, and
//! remove every container, network, volume and swarm they made.

mod compose;
mod dockstack;
mod image;
mod netns;
mod project;
mod rrl;
mod support;
mod swarm;
mod wildcard;
