module github.com/merchshop/merchshop/services/info

go 1.26.0

require (
	// PINNED to v2.25.0 by the replace at the end of this file (the version on
	// the next line is only what minimal version selection computes, because
	// goose requires v2.49.0): ClickHouse here is Debian's 18.16.1, and from
	// v2.26/v2.27 on the driver's batch insert sends a form 18.16 rejects
	// ("expected 0 arguments"); its HTTP protocol fails from v2.37 on. Do not
	// lift the pin until the server is upgraded.
	github.com/ClickHouse/clickhouse-go/v2 v2.49.0
	github.com/google/uuid v1.6.0
	github.com/jackc/pgx/v5 v5.12.0
	github.com/merchshop/merchshop/gen v0.0.0
	github.com/merchshop/merchshop/pkg v0.0.0
	github.com/twmb/franz-go v1.22.3
	golang.org/x/sync v0.24.0
	google.golang.org/grpc v1.85.0
)

require (
	github.com/ClickHouse/ch-go v0.74.0 // indirect
	github.com/andybalholm/brotli v1.2.6 // indirect
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/go-faster/city v1.0.1 // indirect
	github.com/go-faster/errors v0.8.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/kr/text v0.2.0 // indirect
	github.com/mfridman/interpolate v0.0.2 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/paulmach/orb v0.13.0 // indirect
	github.com/pierrec/lz4/v4 v4.1.33 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/pressly/goose/v3 v3.29.0 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	github.com/segmentio/asm v1.2.1 // indirect
	github.com/sethvargo/go-retry v0.5.0 // indirect
	github.com/shopspring/decimal v1.5.0 // indirect
	github.com/twmb/franz-go/pkg/kadm v1.19.0 // indirect
	github.com/twmb/franz-go/pkg/kmsg v1.15.1 // indirect
	go.opentelemetry.io/otel v1.47.0 // indirect
	go.opentelemetry.io/otel/trace v1.47.0 // indirect
	go.uber.org/multierr v1.11.0 // indirect
	golang.org/x/net v0.61.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261019180522-ce908d29299b // indirect
	google.golang.org/protobuf v1.36.12 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)

replace (
	github.com/merchshop/merchshop/gen => ../../gen
	github.com/merchshop/merchshop/pkg => ../../pkg
)

// The pin above is enforced here: goose (required by pkg for migrations)
// requires clickhouse-go v2.49.0 for its CLI, and minimal version selection,
// in this module and across the go.work workspace, would pick that. Only this
// service compiles clickhouse-go; these replaces make it v2.25.0 with the
// ch-go that v2.25.0 was released with.
replace (
	github.com/ClickHouse/ch-go => github.com/ClickHouse/ch-go v0.61.5
	github.com/ClickHouse/clickhouse-go/v2 => github.com/ClickHouse/clickhouse-go/v2 v2.25.0
)
