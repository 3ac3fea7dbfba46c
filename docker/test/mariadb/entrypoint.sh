#!/bin/bash
# First start: a fresh data directory with root@'%' and database "test".
set -euo pipefail
if [[ ! -d /var/lib/mysql/test ]]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db >/dev/null
    mariadbd --user=mysql --bootstrap --skip-networking <<'SQL'
FLUSH PRIVILEGES;
CREATE USER 'root'@'%';
GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;
CREATE DATABASE test;
SQL
fi
mkdir -p /run/mysqld && chown mysql /run/mysqld
exec mariadbd --user=mysql --bind-address=0.0.0.0 --skip-name-resolve
