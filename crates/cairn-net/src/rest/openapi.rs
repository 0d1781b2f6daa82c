//! The OpenAPI document (`GET /v1/openapi.json`), written from
//! [`ROUTES`]: one operation per row, its parameters, body, statuses and
//! credentials as the row says, and the schemas of the JSON bodies.

use utoipa::openapi::path::{
    Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Content, HttpMethod, InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr,
    Required, ResponseBuilder, Schema,
};
use utoipa::{OpenApi as _, PartialSchema, ToSchema};

use super::json::{
    ChangeJson, ChangeListJson, DroppedJson, DropsJson, ErrorJson, HaveJson, HealthJson, IdsJson,
    IndexDeletedJson, IndexEntryJson, IndexListJson, IndexStoredJson, InfoJson, LoginJson, Octets,
    ShardStoredJson,
};
use super::route::{Answer, Auth, Body, MAX_SUMMARY_QUERY, Query, ROUTES, Route, VERSION_HEADER};

/// The pattern of shard ids, index names and folder tags.
const HEX_32: &str = "^[0-9a-fA-F]{64}$";

/// The OpenAPI 3.1 description of the API.
pub fn openapi() -> OpenApi {
    let mut paths = Paths::new();
    for route in &ROUTES {
        paths.add_path_operation(route.path, vec![http_method(route)], operation(route));
    }
    let info = InfoBuilder::new()
        .title("cairn storage node")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Stores and serves encrypted shards and index entries. Shard ids, index names and folder tags are 64 hex digits. Errors are {\"error\": code, \"message\": text}.",
        ))
        .license(Some(
            LicenseBuilder::new()
                .name(env!("CARGO_PKG_LICENSE"))
                .identifier(Some(env!("CARGO_PKG_LICENSE")))
                .build(),
        ))
        .build();
    OpenApiBuilder::new()
        .info(info)
        .paths(paths)
        .components(Some(components()))
        .build()
}

fn http_method(route: &Route) -> HttpMethod {
    match route.method.as_str() {
        "GET" => HttpMethod::Get,
        "HEAD" => HttpMethod::Head,
        "PUT" => HttpMethod::Put,
        "POST" => HttpMethod::Post,
        "DELETE" => HttpMethod::Delete,
        other => unreachable!("no route takes {other}"),
    }
}

fn operation(route: &Route) -> Operation {
    let doc = &route.doc;
    let parameters = parameters(route);
    let mut operation = OperationBuilder::new()
        .tag(doc.tag)
        .summary(Some(doc.summary))
        .operation_id(Some(route.op.name()))
        .parameters((!parameters.is_empty()).then_some(parameters))
        .securities(Some(security(route.auth)));
    operation = match route.body {
        Body::None => operation,
        Body::Shard | Body::IndexData => operation.request_body(Some(
            RequestBodyBuilder::new()
                .description(Some(doc.body))
                .content("application/octet-stream", octets())
                // An entry may hold no data, and an empty body is how HTTP
                // sends none.
                .required(Some(if route.body == Body::IndexData {
                    Required::False
                } else {
                    Required::True
                }))
                .build(),
        )),
        Body::Ids => operation.request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", schema_ref::<IdsJson>())
                .required(Some(Required::True))
                .build(),
        )),
    };
    for &(status, description) in doc.statuses {
        let response = ResponseBuilder::new().description(description);
        let response = match (route.answer, status < 300) {
            // A HEAD answer has no body, successful or not.
            (Answer::Presence, _) => response,
            (_, false) => response.content("application/json", schema_ref::<ErrorJson>()),
            (Answer::Json(schema), true) => response.content(
                "application/json",
                Content::new(Some(Ref::from_schema_name(schema))),
            ),
            (Answer::Octets, true) => response.content("application/octet-stream", octets()),
            (Answer::Entry, true) => response
                .content("application/octet-stream", octets())
                .header(
                    VERSION_HEADER,
                    utoipa::openapi::HeaderBuilder::new()
                        .schema(Some(u64::schema()))
                        .description(Some("The entry's version"))
                        .build(),
                ),
            (Answer::Document, true) => {
                response.content("application/json", Content::new(None::<RefOr<Schema>>))
            }
        };
        operation = operation.response(status.to_string(), response.build());
    }
    operation.build()
}

fn parameters(route: &Route) -> Vec<Parameter> {
    let mut parameters = Vec::new();
    if let Some(param) = route.param {
        parameters.push(parameter(
            param.name(),
            ParameterIn::Path,
            route.doc.param,
            hex_string(),
        ));
    }
    match route.query {
        Query::None => {}
        // The cairn-version header may stand in for the query, which
        // OpenAPI cannot say ("one of two parameters is required"): the
        // document names the query as required, the way clients send it.
        Query::Entry => {
            parameters.push(
                parameter(
                    "version",
                    ParameterIn::Query,
                    "The entry's version (a client that cannot set the query may send the cairn-version header instead)",
                    integer(KnownFormat::UInt64, u64::MAX),
                )
                .required(Required::True),
            );
            parameters.push(parameter(
                "folder",
                ParameterIn::Query,
                "The tag of the folder the entry is listed in (64 hex digits; default: the legacy folder, all zeros)",
                hex_string(),
            ));
            parameters.push(parameter(
                "summary_len",
                ParameterIn::Query,
                "How many of the data's first bytes are the entry's summary, which folder listings and the change feed return (default: all of the data; more than the data is refused with 400)",
                integer(KnownFormat::UInt32, MAX_SUMMARY_QUERY),
            ));
        }
        Query::Page => {
            parameters.push(parameter(
                "after",
                ParameterIn::Query,
                "List names strictly after this one (64 hex digits)",
                hex_string(),
            ));
            parameters.push(limit());
        }
        Query::Changes => {
            parameters.push(parameter(
                "since",
                ParameterIn::Query,
                "List changes after this change number (default 0: from the start); pass the last answer's next",
                integer(KnownFormat::UInt64, u64::MAX),
            ));
            parameters.push(parameter(
                "folder",
                ParameterIn::Query,
                "Only entries in the folder of this tag (64 hex digits)",
                hex_string(),
            ));
            parameters.push(limit());
        }
    }
    parameters
        .into_iter()
        .map(ParameterBuilder::build)
        .collect()
}

/// The `limit` of a page.
fn limit() -> ParameterBuilder {
    parameter(
        "limit",
        ParameterIn::Query,
        "At most this many entries (default 1000; more is taken as 1000)",
        integer(KnownFormat::UInt32, u32::MAX.into()),
    )
}

fn parameter(
    name: &str,
    place: ParameterIn,
    description: &str,
    schema: ObjectBuilder,
) -> ParameterBuilder {
    let required = if place == ParameterIn::Path {
        Required::True
    } else {
        Required::False
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(place)
        .description(Some(description))
        .required(required)
        .schema(Some(schema))
}

fn hex_string() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(HEX_32))
}

fn integer(format: KnownFormat, maximum: u64) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(format)))
        .minimum(Some(0))
        .maximum(Some(maximum))
}

/// Raw bytes, described inline.
fn octets() -> Content {
    Content::new(Some(Octets::schema()))
}

fn schema_ref<T: ToSchema>() -> Content {
    Content::new(Some(Ref::from_schema_name(T::name())))
}

/// The credentials a route takes, as OpenAPI security requirements (an
/// empty one: none needed).
fn security(auth: Auth) -> Vec<SecurityRequirement> {
    let none = SecurityRequirement::default;
    let basic = || SecurityRequirement::new("basic", Vec::<String>::new());
    let bearer = || SecurityRequirement::new("bearer", Vec::<String>::new());
    match auth {
        Auth::None => vec![none()],
        Auth::Login => vec![basic()],
        Auth::Optional => vec![none(), basic(), bearer()],
        Auth::User => vec![basic(), bearer()],
    }
}

/// The JSON schemas, and the `basic` and `bearer` schemes the operations
/// refer to.
fn components() -> utoipa::openapi::Components {
    let mut basic = Http::new(HttpAuthScheme::Basic);
    basic.description = Some(
        "The user name, and as password the base64 of the user's 32-byte auth key for this node"
            .into(),
    );
    let mut bearer = Http::new(HttpAuthScheme::Bearer);
    bearer.description = Some("A token from POST /v1/login".into());
    let mut components = Schemas::openapi()
        .components
        .expect("the schemas are components");
    components.add_security_scheme("basic", SecurityScheme::Http(basic));
    components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
    components
}

/// The JSON bodies, as components to refer to.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    ErrorJson,
    IdsJson,
    HaveJson,
    DropsJson,
    DroppedJson,
    ShardStoredJson,
    IndexStoredJson,
    IndexDeletedJson,
    IndexEntryJson,
    IndexListJson,
    ChangeJson,
    ChangeListJson,
    LoginJson,
    InfoJson,
    HealthJson,
)))]
struct Schemas;
