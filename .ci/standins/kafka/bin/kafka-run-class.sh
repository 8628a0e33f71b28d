#!/bin/bash
# Kafka's kafka-run-class.sh, reduced to what the stand-in needs: run a class from /opt/kafka/libs.
# shellcheck disable=SC2086 # the option variables are word lists
exec java ${KAFKA_HEAP_OPTS:--Xmx256m} ${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1} \
    -Dlog4j2.configurationFile="${KAFKA_LOG4J_CONFIG:-/opt/kafka/config/tools-log4j2.properties}" ${KAFKA_OPTS:-} \
    -cp '/opt/kafka/libs/*' "$@"
