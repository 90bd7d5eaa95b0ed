"""Settings: one typed object, loaded once by the CLI or ``create_app``'s caller.

Sources, strongest first: ``DEVMESH_*`` environment variables, then the YAML
file (``configs/config.yaml`` by default) with ``${VAR}`` / ``${VAR:-default}``
expanded from the same environment, then the defaults below. The environment is
read in one place, ``load_settings``, from the mapping it is given (``os.environ``
only when it is given none): ``Settings`` itself is a plain model that reads
nothing, so a test's ``environ={...}`` is all there is. Nothing else in the
package reads the environment.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

__all__ = ["ConfigError", "DeclaredTool", "Settings", "load_settings"]

DEFAULT_CONFIG_FILE = Path("configs/config.yaml")
_ENV_PREFIX = "DEVMESH_"
_TOOLSET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """The configuration is invalid; the message names the key."""


class LoggingSettings(BaseModel):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class RateLimitSettings(BaseModel):
    requests_per_minute: int | None = Field(
        default=600,
        ge=1,
        description="Requests per minute one API key may make on /api/v1 and /mcp; unset: none.",
    )
    burst: int | None = Field(
        default=None, ge=1, description="Requests allowed at once; defaults to a minute's worth."
    )
    failed_auth_per_address: int | None = Field(
        default=60,
        ge=1,
        description="Failed authentications one client address may make per minute; unset: none.",
    )
    failed_auth_per_key_prefix: int | None = Field(
        default=10,
        ge=1,
        description="Failed authentications with one key prefix per minute; unset: none.",
    )


class HttpSettings(BaseModel):
    """What one HTTP request may cost before the service refuses it."""

    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1, description="Largest request body, on every route (413)."
    )
    body_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a request body may take to arrive (408)."
    )
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        description="Largest request line plus headers (431).",
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds from a request's first byte to the end of its headers (408).",
    )
    keep_alive_timeout: int = Field(
        default=5, ge=1, description="Seconds an idle keep-alive connection stays open."
    )
    max_concurrency: int | None = Field(
        default=1000,
        ge=1,
        description="Connections and requests in flight at once; above it, 503. Unset: none.",
    )


class EgressSettings(BaseModel):
    """Where outbound calls may go; checked on the resolved address as each connection opens."""

    allow_loopback: bool = Field(
        default=True, description="Tools on 127.0.0.0/8 and ::1 (a CI server on this machine)."
    )
    allow_private: bool = Field(
        default=True,
        description="Tools on private and other non-public ranges (10/8, 172.16/12, "
        "192.168/16, 100.64/10, fc00::/7).",
    )
    allow_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs always allowed, even link-local or cloud metadata addresses.",
    )
    deny_networks: list[str] = Field(
        default_factory=list, description="CIDRs always denied (allow_networks wins)."
    )

    @field_validator("allow_networks", "deny_networks", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        # From the environment a list comes as one string: "10.1.0.0/16,10.2.0.0/16".
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allow_networks", "deny_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not a network (CIDR): {exc}") from None
        return value


class RetryPolicySettings(BaseModel):
    """How often a failing event handler is tried, and how long between tries."""

    max_attempts: int = Field(
        default=3, ge=1, le=100, description="Tries before the delivery goes to the DLQ."
    )
    backoff: Literal["exponential", "constant"] = Field(
        default="exponential", description="exponential doubles the delay after each failure."
    )
    initial_delay: float = Field(default=1.0, gt=0, description="Seconds before the 2nd try.")
    max_delay: float = Field(default=300.0, gt=0, description="Longest wait between tries.")


class HandlerGroupSettings(BaseModel):
    """Handling of one provider's events, as the original ``events.handlers.<provider>``."""

    enabled: bool = True
    workers: int | None = Field(
        default=None, ge=1, description="Deliveries of this provider's events run at once."
    )
    retry_policy: RetryPolicySettings | None = None


class WatcherSettings(BaseModel):
    """The build watcher: polls builds until they are final (``events.watcher``)."""

    enabled: bool = Field(
        default=True, description="Poll triggered builds until final, where the worker runs."
    )
    interval: float = Field(
        default=15.0, gt=0, le=3600, description="Seconds between two polls of one build."
    )
    deadline: float = Field(
        default=86_400.0,
        gt=0,
        description="Seconds after which a build still not final is given up (gave_up).",
    )
    batch_size: int = Field(default=50, ge=1, le=1000, description="Builds polled at once.")


class RetentionSettings(BaseModel):
    """How long the event system's records are kept (``events.retention``)."""

    days: float = Field(
        default=30.0,
        ge=0,
        description="Events, handled marks, tool call records, webhook deliveries and "
        "settled notifications older than this are deleted; 0 keeps them.",
    )
    interval: float = Field(
        default=3600.0, gt=0, le=86_400, description="Seconds between two prune runs."
    )
    batch_size: int = Field(
        default=1000, ge=1, le=100_000, description="Rows one delete statement removes."
    )


class EventsSettings(BaseModel):
    in_process_worker: bool = Field(
        default=True, description="devmesh serve runs the event worker in its own process."
    )
    workers: int = Field(
        default=8, ge=1, le=256, description="Deliveries one worker process handles at once."
    )
    retry_policy: RetryPolicySettings = RetryPolicySettings()
    handlers: dict[str, HandlerGroupSettings] = Field(
        default_factory=dict, description="Per provider: enabled, workers, retry_policy."
    )
    poll_interval: float = Field(
        default=0.5, gt=0, le=60, description="Seconds an idle worker waits before looking again."
    )
    claim_idle: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a claimed delivery may go unacknowledged before another "
        "worker takes it over (a crashed worker's work).",
    )
    batch_size: int = Field(default=100, ge=1, le=1000, description="Deliveries claimed at once.")
    watcher: WatcherSettings = WatcherSettings()
    retention: RetentionSettings = RetentionSettings()
    stream: str = Field(
        default="devmesh:events",
        min_length=1,
        max_length=100,
        description="Redis key prefix of the stream, its consumer group and dead letters.",
    )


class NotificationSettings(BaseModel):
    """Signed webhooks to tenants' subscribed URLs (notifications out)."""

    allow_loopback: bool = Field(
        default=False,
        description="Subscribers on 127.0.0.0/8 and ::1 (only if egress.allow_loopback too).",
    )
    allow_private: bool = Field(
        default=False,
        description="Subscribers on private and other non-public ranges (only if "
        "egress.allow_private too).",
    )
    retry_policy: RetryPolicySettings = Field(
        default=RetryPolicySettings(max_attempts=5, initial_delay=5.0, max_delay=600.0),
        description="Tries per notification and the backoff between them.",
    )
    disable_after: int = Field(
        default=15,
        ge=1,
        le=10_000,
        description="Failed attempts in a row after which a subscription is disabled.",
    )
    timeout: float = Field(
        default=10.0, gt=0, le=120, description="Seconds one attempt at sending may take."
    )
    concurrency: int = Field(
        default=16, ge=1, le=1000, description="Notifications one worker process sends at once."
    )


def _seconds(value: Any) -> Any:
    """``30``, ``"30s"``, ``"500ms"``, ``"2m"``, ``"1h"``: seconds, as the original wrote them."""
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match is None:
            raise ValueError("must be seconds, or a duration such as 30s, 500ms, 2m or 1h")
        return float(match.group(1)) * _UNITS[match.group(2) or "s"]
    return value


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
Seconds = Annotated[float, BeforeValidator(_seconds)]
_MIN_WEBHOOK_SECRET = 16


class DeclaredCircuitBreaker(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_failures: int | None = Field(
        default=None, ge=1, le=1000, description="Failures in a row that open the circuit."
    )
    timeout: Seconds | None = Field(
        default=None, gt=0, le=3600, description="How long the circuit stays open before a probe."
    )


class DeclaredRateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests_per_second: float = Field(gt=0, le=10_000, description="Outbound calls per second.")
    burst: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Calls allowed at once; at least requests_per_second (the default).",
    )

    @field_validator("burst")
    @classmethod
    def _a_second_at_least(cls, burst: int | None, info: ValidationInfo) -> int | None:
        rate = info.data.get("requests_per_second")
        if burst is not None and rate is not None and burst < rate:
            raise ValueError("must be at least requests_per_second (a second's worth)")
        return burst


class DeclaredWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: SecretStr = Field(
        description="The secret the tool signs or sends its deliveries with; 16 characters "
        "at least."
    )
    allowed_events: list[str] | None = Field(
        default=None, description="Event types kept from deliveries; unset: all."
    )
    scheme: Literal["provider", "standard"] | None = Field(
        default=None,
        description="provider: the tool's own scheme; standard: Standard Webhooks "
        "(whsec_ secret). Default: the provider's own where it has one.",
    )

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr) -> SecretStr:
        if len(secret.get_secret_value()) < _MIN_WEBHOOK_SECRET:
            raise ValueError(f"must be at least {_MIN_WEBHOOK_SECRET} characters")
        return secret

    @field_validator("allowed_events", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        # From the environment a list comes as one string: "build.failed,build.completed".
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class DeclaredTool(BaseModel):
    """One tool instance declared in the file (``adapters.ci.<name>``), as the original."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1, description="An installed provider: buildbot, gitlab.")
    tenant: str | None = Field(default=None, description="Owner; default: the top-level tenant.")
    url: str | None = Field(
        default=None, description="The tool's base URL; optional where the provider has one."
    )
    token: SecretStr | None = Field(default=None, description="Token (or password with username).")
    username: str | None = Field(default=None, description="With token or password: a login.")
    password: SecretStr | None = Field(default=None, description="With username, instead of token.")
    credential_type: str | None = Field(
        default=None,
        description="One of the provider's credential types; default: basic with a username, "
        "else the provider's first token type.",
    )
    credential_mode: Literal["stored", "passthrough", "either"] = Field(
        default="either", description="As the REST API's credential_mode."
    )
    verify_tls: bool = True
    config: dict[str, Any] = Field(
        default_factory=dict, description="Provider settings, as the REST API's config."
    )
    timeout: Seconds | None = Field(
        default=None, gt=0, le=600, description="Seconds one call may take, retries included."
    )
    max_retries: int | None = Field(default=None, ge=0, le=10, description="Retries of a read.")
    circuit_breaker: DeclaredCircuitBreaker | None = None
    rate_limit: DeclaredRateLimit | None = None
    webhook: DeclaredWebhook | None = None

    @field_validator("username")
    @classmethod
    def _username_needs_a_secret(cls, username: str | None, info: ValidationInfo) -> str | None:
        if username is not None and not (info.data.get("token") or info.data.get("password")):
            raise ValueError("needs token or password beside it")
        return username


class AdaptersSettings(BaseModel):
    """Tool instances declared in the file, applied by ``devmesh apply``."""

    model_config = ConfigDict(extra="forbid")

    ci: dict[str, DeclaredTool] = Field(
        default_factory=dict, description="CI tool instances by name."
    )


class TracingSettings(BaseModel):
    exporter: Literal["none", "otlp", "console"] = "none"
    service_name: str = "devmesh"


class KnowledgeSettings(BaseModel):
    """Contexts and log search: which embedder turns text into vectors."""

    embedder: Literal["model2vec", "sentence-transformers", "openai"] = Field(
        default="model2vec",
        description="model2vec runs the small model shipped with Developer Mesh, offline; "
        "sentence-transformers a local model of yours (install sentence-transformers "
        "yourself); openai an OpenAI-compatible /embeddings endpoint.",
    )
    model: str | None = Field(
        default=None,
        description="The model: a directory for model2vec (unset: the shipped one), a "
        "directory or name for sentence-transformers, a model name for openai.",
    )
    url: str | None = Field(
        default=None,
        description="Base URL of the OpenAI-compatible API (…/v1), for embedder openai.",
    )
    api_key: SecretStr | None = Field(
        default=None, description="Bearer token for the embeddings endpoint, if it needs one."
    )
    batch_size: int = Field(
        default=512, ge=1, le=4096, description="Texts embedded at once, off the event loop."
    )
    learn: bool = Field(
        default=True,
        description="The worker remembers every final build: its context, its indexed log, "
        "and for a failure the analysis, resolutions and auto-retry.",
    )
    log_max_lines: int = Field(
        default=20_000,
        ge=100,
        le=200_000,
        description="Lines of a build's log (its tail) the worker reads, indexes and analyses.",
    )


class DatabaseSettings(BaseModel):
    sqlite_synchronous: Literal["full", "normal"] = Field(
        default="normal",
        description="SQLite's synchronous pragma (in WAL): 'normal' keeps every commit "
        "across a process crash and flushes at checkpoints; 'full' flushes every commit, "
        "so it also survives a power loss. Ignored on PostgreSQL.",
    )


class ServeSettings(BaseModel):
    """``devmesh serve``: how many processes answer on its port."""

    workers: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Processes serving HTTP on one port. Unset: one per CPU when redis_url "
        "is set (rate limits and breakers are shared there), else one.",
    )


class Settings(BaseModel):
    # A plain model, not pydantic-settings' BaseSettings: that one would read the
    # process environment again on its own, whatever ``load_settings`` was given.
    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Field(
        default=Path("var"),
        description="Where the embedded default keeps its SQLite file and generated key.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; unset means SQLite in the data directory.",
    )
    redis_url: str | None = Field(
        default=None, description="Redis URL; unset means the in-process event bus."
    )
    encryption_key: SecretStr | None = Field(
        default=None,
        description="Base64 of 32 bytes; unset means a key file kept in the data directory.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=0, le=65535)
    auto_migrate: bool = Field(
        default=True, description="Apply database migrations when a command opens the database."
    )
    shutdown_timeout: float = Field(
        default=10.0, gt=0, description="Seconds in-flight requests get after SIGTERM."
    )
    db_pool_size: int = Field(default=10, ge=1)
    cache_ttl: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="Seconds a process may reuse an authenticated API key or a tool's "
        "definition without asking the database; 0 turns the caches off.",
    )
    http: HttpSettings = HttpSettings()
    tool_name_separator: Literal["_", "-", ".", "__"] = Field(
        default="_",
        description="Joins instance and operation in MCP tool names: '_' gives "
        "ci_trigger_build, which every major MCP client accepts; '.' keeps "
        "ci.trigger_build for clients that allow dots. tools/call accepts the dotted "
        "form either way.",
    )
    toolsets: list[str] = Field(
        default_factory=lambda: ["knowledge"],
        description="The toolsets an MCP connection lists when it names none "
        "(builds, logs, pipelines, artifacts, knowledge, an OpenAPI tag; 'all' for every "
        "operation), beside search_tools and call_tool, which reach the rest. Given for "
        "devmesh mcp (stdio), it lists exactly these: DEVMESH_TOOLSETS=builds,logs.",
    )
    mcp_mode: Literal["tools", "search"] = Field(
        default="tools",
        description="What devmesh mcp (stdio) lists: 'tools' (the toolsets) or 'search' "
        "(only search_tools, call_tool and list_toolsets). HTTP clients choose per "
        "connection with /mcp?mode=search.",
    )
    logging: LoggingSettings = LoggingSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    tracing: TracingSettings = TracingSettings()
    egress: EgressSettings = EgressSettings()
    events: EventsSettings = EventsSettings()
    notifications: NotificationSettings = NotificationSettings()
    tenant: str | None = Field(
        default=None, description="The tenant that owns the tools under adapters (by name)."
    )
    adapters: AdaptersSettings = AdaptersSettings()
    knowledge: KnowledgeSettings = KnowledgeSettings()
    database: DatabaseSettings = DatabaseSettings()
    serve: ServeSettings = ServeSettings()

    @field_validator("toolsets", mode="before")
    @classmethod
    def _toolset_list(cls, value: Any) -> Any:
        # From the environment a list comes as one string: "builds,logs".
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator("toolsets")
    @classmethod
    def _toolset_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _TOOLSET.match(name):
                raise ValueError(f"{name!r} is not a toolset name")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str | None) -> str | None:
        if value is None:
            return None
        allowed = ("sqlite+aiosqlite://", "postgresql+asyncpg://", "postgresql://")
        if not value.startswith(allowed):
            raise ValueError(
                "must start with sqlite+aiosqlite://, postgresql+asyncpg:// or postgresql://"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url is None:
            return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'devmesh.db'}"
        if self.database_url.startswith("postgresql://"):
            return "postgresql+asyncpg://" + self.database_url.removeprefix("postgresql://")
        return self.database_url


def expand_env(text: str, environ: Mapping[str, str], *, key: str = "") -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; an unset VAR without default is an
    error, naming the variable and the ``key`` whose value refers to it."""

    def _sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ and environ[name] != "":
            return environ[name]
        if default is not None:
            return default
        where = f"{key}: " if key else ""
        raise ConfigError(f"{where}config file references ${{{name}}}, which is not set")

    return _ENV_REF.sub(_sub, text)


def _expand_values(node: Any, environ: Mapping[str, str], path: str = "") -> Any:
    # Expanding parsed string values, not the raw text, keeps comments inert and
    # stops an environment value from injecting YAML structure.
    if isinstance(node, str):
        return expand_env(node, environ, key=path)
    if isinstance(node, dict):
        return {
            key: _expand_values(value, environ, f"{path}.{key}" if path else str(key))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_expand_values(value, environ, f"{path}[{i}]") for i, value in enumerate(node)]
    return node


def _read_yaml(path: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    expanded: dict[str, Any] = _expand_values(data, environ)
    return expanded


_BOUNDS = {
    "greater_than_equal": ("≥", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("≤", "le"),
    "less_than": ("<", "lt"),
}


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"]) or "(root)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        elif error["type"] in _BOUNDS:
            word, bound = _BOUNDS[error["type"]]
            message = f"must be {word} {error.get('ctx', {}).get(bound)}"
        parts.append(f"{key}: {message}")
    return "; ".join(parts)


def load_settings(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Load and validate settings. Raises ``ConfigError`` naming the bad key.

    ``config_file`` defaults to ``$DEVMESH_CONFIG`` or ``configs/config.yaml`` when
    that exists; a file named explicitly must exist.
    """
    env = os.environ if environ is None else environ
    explicit = config_file or (Path(env["DEVMESH_CONFIG"]) if env.get("DEVMESH_CONFIG") else None)
    path = explicit or (DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None)
    data = _read_yaml(path, env) if path is not None else {}
    _merge(data, _otel_overrides(env))
    _merge(data, _env_overrides(env))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        # Not chained: the validation error quotes the input, and the file holds secrets.
        raise ConfigError(f"invalid configuration: {_describe(exc)}") from None


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``DEVMESH_LOGGING__LEVEL=debug`` → ``{"logging": {"level": "debug"}}``."""
    overrides: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(_ENV_PREFIX) or name == "DEVMESH_CONFIG":
            continue
        *parents, leaf = name.removeprefix(_ENV_PREFIX).lower().split("__")
        # Other DEVMESH_* variables (DEVMESH_API_KEY for the stdio client, test
        # settings) belong to other readers; only known top-level keys apply here.
        if (parents[0] if parents else leaf) not in Settings.model_fields:
            continue
        node = overrides
        for part in parents:
            node = node.setdefault(part, {})
        # An empty value means null, so an optional setting can be switched off.
        node[leaf] = value if value != "" else None
    return overrides


def _otel_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """The standard OpenTelemetry variables, weaker than ``DEVMESH_TRACING__*``.

    The exporter itself reads ``OTEL_EXPORTER_OTLP_*`` (endpoint, headers, protocol).
    """
    tracing: dict[str, Any] = {}
    if environ.get("OTEL_TRACES_EXPORTER"):
        # A list is allowed by the spec; the first exporter we know wins.
        known = ("none", "otlp", "console")
        names = [n.strip() for n in environ["OTEL_TRACES_EXPORTER"].split(",")]
        tracing["exporter"] = next((n for n in names if n in known), names[0])
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        tracing["exporter"] = "none"
    if environ.get("OTEL_SERVICE_NAME"):
        tracing["service_name"] = environ["OTEL_SERVICE_NAME"]
    return {"tracing": tracing} if tracing else {}


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> None:
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
