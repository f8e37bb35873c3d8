#!/usr/bin/env bash
# The differential test's reference engine: Kafka Streams 4.1 jars from Maven Central (pom.xml)
# into libs/, and Reference.java compiled into classes/ (Java 17, no plugins). Idempotent: a
# second run does nothing. Run it with:
#   java -cp 'infra/streams-reference/libs/*:infra/streams-reference/classes' Reference \
#        BOOTSTRAP PREFIX APPLICATION_ID STATE_DIR
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIBS="$HERE/libs"
CLASSES="$HERE/classes"

if [ ! -f "$LIBS/.complete" ]; then
  echo "[infra] resolving Kafka Streams' jars from Maven Central into $LIBS" >&2
  rm -rf "$LIBS"
  mvn -B -q -f "$HERE/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIBS"
  touch "$LIBS/.complete"
fi
if [ ! -f "$CLASSES/Reference.class" ] || [ "$HERE/Reference.java" -nt "$CLASSES/Reference.class" ]; then
  rm -rf "$CLASSES"
  mkdir -p "$CLASSES"
  javac --release 17 -nowarn -cp "$LIBS/*" -d "$CLASSES" "$HERE/Reference.java"
fi
