//! Containers end to end: disco's image, the compose file and the swarm
//! stack in docker/, run on a real Docker engine; and the glibc resolver of
//! a network namespace pointed at disco. The Docker tests fail, never skip,
//! when `docker info` does; they make their base images from Debian's
//! packages (docker/test/base-images.sh) since no registry is reached, and
//! remove every container, network, volume and swarm they made.

// The etcd binary's harness and disco in-process, for the registrar's
// Docker source: their helpers this binary does not call are not dead
// code there.
#[allow(dead_code)]
#[path = "../etcd/certs.rs"]
mod certs;
#[allow(dead_code)]
#[path = "../etcd/cluster.rs"]
mod cluster;
mod compose;
#[path = "../common/disco.rs"]
mod disco;
mod dockstack;
mod image;
mod netns;
#[path = "../common/ports.rs"]
mod ports;
mod project;
#[path = "../common/proxy.rs"]
mod proxy;
mod redis;
mod redis_swarm;
mod registrar_docker;
mod rrl;
mod support;
mod swarm;
mod wildcard;
#[allow(dead_code)]
#[path = "../zookeeper/server.rs"]
mod zk_server;
