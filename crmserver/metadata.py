"""Describing what is served: the service document, ``$metadata`` (CSDL XML) and the
``EntityDefinitions`` metadata entity set with ``Attributes``, ``Keys`` and the relationship
navigations (reference section 11: real clients discover entity sets and keys this way).

All of it is generated from :mod:`crmserver.entities`, so it cannot drift from what the
routes accept.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from starlette.requests import Request
from starlette.responses import Response

from .entities import ENTITIES, Attribute, Entity
from .errors import QUERY_SYNTAX, ODataError, bad_request
from .odata_filter import BoolOp, Call, Compare, FilterError, Literal, Node, Not, Path, parse_filter
from .protocol import Segment, json_response

if TYPE_CHECKING:
    from .app import Service

NS = uuid.UUID("3f0c1b8e-8a51-4c55-9d0e-6a2f0c7d9b11")
EDM = {
    "guid": "Edm.Guid",
    "string": "Edm.String",
    "memo": "Edm.String",
    "int": "Edm.Int32",
    "bigint": "Edm.Int64",
    "bool": "Edm.Boolean",
    "datetime": "Edm.DateTimeOffset",
    "money": "Edm.Decimal",
    "decimal": "Edm.Decimal",
    "picklist": "Edm.Int32",
    "state": "Edm.Int32",
    "status": "Edm.Int32",
    "lookup": "Edm.Guid",
    "owner": "Edm.Guid",
}
ATTRIBUTE_TYPE = {
    "guid": "Uniqueidentifier",
    "string": "String",
    "memo": "Memo",
    "int": "Integer",
    "bigint": "BigInt",
    "bool": "Boolean",
    "datetime": "DateTime",
    "money": "Money",
    "decimal": "Decimal",
    "picklist": "Picklist",
    "state": "State",
    "status": "Status",
    "lookup": "Lookup",
    "owner": "Owner",
}
METADATA_CLASS = {
    "Uniqueidentifier": "UniqueIdentifierAttributeMetadata",
    "String": "StringAttributeMetadata",
    "Memo": "MemoAttributeMetadata",
    "Integer": "IntegerAttributeMetadata",
    "BigInt": "BigIntAttributeMetadata",
    "Boolean": "BooleanAttributeMetadata",
    "DateTime": "DateTimeAttributeMetadata",
    "Money": "MoneyAttributeMetadata",
    "Decimal": "DecimalAttributeMetadata",
    "Picklist": "PicklistAttributeMetadata",
    "State": "StateAttributeMetadata",
    "Status": "StatusAttributeMetadata",
    "Lookup": "LookupAttributeMetadata",
    "Owner": "LookupAttributeMetadata",
}

# name -> (kind, bound to, parameters [(name, type, nullable)], response properties)
OPERATIONS: dict[
    str, tuple[str, str | None, list[tuple[str, str, bool]], list[tuple[str, str]]]
] = {
    "WhoAmI": (
        "Function",
        None,
        [],
        [("BusinessUnitId", "Edm.Guid"), ("UserId", "Edm.Guid"), ("OrganizationId", "Edm.Guid")],
    ),
    "GetTrackingTokenEmail": (
        "Action",
        None,
        [("Subject", "Edm.String", True)],
        [("TrackingToken", "Edm.String")],
    ),
    "SendEmail": (
        "Action",
        "email",
        [("IssueSend", "Edm.Boolean", False), ("TrackingToken", "Edm.String", True)],
        [("Subject", "Edm.String")],
    ),
    "BackgroundSendEmail": (
        "Action",
        None,
        [("Query", "mscrm.QueryBase", False)],
        [
            ("EntityCollection", "Collection(mscrm.email)"),
            ("HasAttachments", "Collection(Edm.Boolean)"),
        ],
    ),
    "CheckPromoteEmail": (
        "Function",
        None,
        [
            ("MessageId", "Edm.String", False),
            ("Subject", "Edm.String", True),
            ("DirectionCode", "Edm.Int32", True),
        ],
        [("ShouldPromote", "Edm.Boolean"), ("ReasonCode", "Edm.Int32")],
    ),
    "CheckIncomingEmail": (
        "Function",
        None,
        [
            ("MessageId", "Edm.String", False),
            ("Subject", "Edm.String", True),
            ("From", "Edm.String", True),
            ("To", "Edm.String", True),
            ("Cc", "Edm.String", True),
            ("Bcc", "Edm.String", True),
            ("ExtraProperties", "mscrm.crmbaseentity", True),
        ],
        [("ShouldDeliver", "Edm.Boolean"), ("ReasonCode", "Edm.Int32")],
    ),
}
_DELIVER = [
    ("MessageId", "Edm.String", False),
    ("Subject", "Edm.String", True),
    ("From", "Edm.String", True),
    ("To", "Edm.String", True),
    ("Cc", "Edm.String", True),
    ("Bcc", "Edm.String", True),
    ("ReceivedOn", "Edm.DateTimeOffset", True),
    ("SubmittedBy", "Edm.String", True),
    ("Importance", "Edm.String", True),
    ("Body", "Edm.String", True),
    ("Attachments", "Collection(mscrm.activitymimeattachment)", True),
    ("ExtraProperties", "mscrm.email", True),
]
OPERATIONS["DeliverPromoteEmail"] = ("Action", None, _DELIVER, [("EmailId", "Edm.Guid")])
OPERATIONS["AddToQueue"] = (
    "Action",
    "queue",
    [
        ("Target", "mscrm.crmbaseentity", False),
        ("SourceQueue", "mscrm.queue", True),
        ("QueueItemProperties", "mscrm.queueitem", True),
    ],
    [("QueueItemId", "Edm.Guid")],
)
OPERATIONS["DeliverIncomingEmail"] = (
    "Action",
    "Collection(email)",
    [*_DELIVER, ("ValidateBeforeCreate", "Edm.Boolean", True)],
    [("EmailId", "Edm.Guid")],
)


def metadata_id(*parts: str) -> str:
    return str(uuid.uuid5(NS, ":".join(parts)))


def label(text: str) -> dict[str, Any]:
    lab = {
        "Label": text,
        "LanguageCode": 1033,
        "IsManaged": True,
        "MetadataId": metadata_id("label", text),
    }
    return {"LocalizedLabels": [lab], "UserLocalizedLabel": lab}


def display(name: str) -> str:
    return name.replace("_", " ").title()


def entity_definition(e: Entity) -> dict[str, Any]:
    return {
        "MetadataId": metadata_id("entity", e.logical),
        "LogicalName": e.logical,
        "SchemaName": e.logical.capitalize() if not e.logical.startswith("tbx_") else e.logical,
        "EntitySetName": e.set_name,
        "LogicalCollectionName": e.set_name,
        "CollectionSchemaName": e.set_name.capitalize(),
        "PrimaryIdAttribute": e.key,
        "PrimaryNameAttribute": e.primary_name,
        "ObjectTypeCode": e.object_type_code,
        "IsActivity": e.is_activity,
        "IsActivityParty": bool(e.email_attrs),
        "ChangeTrackingEnabled": e.change_tracking,
        "OwnershipType": {"user": "UserOwned", "org": "OrganizationOwned"}.get(e.ownership, "None"),
        "IsCustomEntity": False,
        "IsValidForAdvancedFind": True,
        "DisplayName": label(display(e.logical)),
        "DisplayCollectionName": label(display(e.set_name)),
    }


def attribute_definition(e: Entity, a: Attribute) -> dict[str, Any]:
    kind = ATTRIBUTE_TYPE[a.type]
    out: dict[str, Any] = {
        "@odata.type": f"#Microsoft.Dynamics.CRM.{METADATA_CLASS[kind]}",
        "MetadataId": metadata_id("attribute", e.logical, a.name),
        "LogicalName": a.name,
        "SchemaName": a.name,
        "EntityLogicalName": e.logical,
        "AttributeType": kind,
        "AttributeTypeName": {"Value": f"{kind}Type"},
        "IsPrimaryId": a.name == e.key,
        "IsPrimaryName": a.name == e.primary_name,
        "IsCustomAttribute": a.name.startswith("tbx_"),
        "IsValidForCreate": not a.readonly
        and a.name not in ("createdon", "modifiedon", "versionnumber"),
        "IsValidForUpdate": not a.readonly and a.name != e.key,
        "IsValidForRead": True,
        "DisplayName": label(display(a.name)),
    }
    if a.max_length:
        out["MaxLength"] = a.max_length
    if a.is_lookup:
        out["Targets"] = list(a.targets)
    if a.options:
        out["OptionSet"] = {
            "Options": [{"Value": k, "Label": label(v)} for k, v in a.options.items()]
        }
    if a.default is not None and a.type in ("picklist", "bool", "int"):
        out["DefaultFormValue" if a.type != "bool" else "DefaultValue"] = a.default
    return out


def many_to_one(e: Entity) -> list[dict[str, Any]]:
    out = []
    for nav, attr, target in e.single_navs():
        t = ENTITIES[target]
        out.append(
            {
                "MetadataId": metadata_id("rel", e.logical, nav),
                "SchemaName": f"{target}_{e.logical}_{attr.name}",
                "RelationshipType": "OneToManyRelationship",
                "ReferencedEntity": target,
                "ReferencedAttribute": t.key,
                "ReferencingEntity": e.logical,
                "ReferencingAttribute": attr.name,
                "ReferencingEntityNavigationPropertyName": nav,
                "ReferencedEntityNavigationPropertyName": f"{target}_{e.logical}_{attr.name}",
            }
        )
    return out


def one_to_many(e: Entity) -> list[dict[str, Any]]:
    out = []
    for nav in e.collection_navs.values():
        child = ENTITIES[nav.child]
        out.append(
            {
                "MetadataId": metadata_id("rel", e.logical, nav.name),
                "SchemaName": nav.name,
                "RelationshipType": "OneToManyRelationship",
                "ReferencedEntity": e.logical,
                "ReferencedAttribute": e.key,
                "ReferencingEntity": child.logical,
                "ReferencingAttribute": nav.child_attr,
                "ReferencedEntityNavigationPropertyName": nav.name,
                "ReferencingEntityNavigationPropertyName": f"{nav.child_attr}_{e.logical}",
            }
        )
    return out


class Metadata:
    def __init__(self, service: Service) -> None:
        self.service = service
        self._csdl: dict[bool, bytes] = {}

    def service_document(self, base: str) -> Response:
        sets = [
            {"name": e.set_name, "kind": "EntitySet", "url": e.set_name} for e in ENTITIES.values()
        ]
        sets.append({"name": "EntityDefinitions", "kind": "EntitySet", "url": "EntityDefinitions"})
        return json_response({"@odata.context": f"{base}/$metadata", "value": sets})

    async def csdl(self, request: Request) -> Response:
        annotations = request.query_params.get("annotations") == "true"
        if annotations not in self._csdl:
            self._csdl[annotations] = build_csdl(annotations).encode("utf-8")
        resp = Response(self._csdl[annotations], media_type="application/xml")
        resp.headers["OData-Version"] = "4.0"
        return resp

    def entity_definitions(self, request: Request, base: str, segments: list[Segment]) -> Response:
        """``EntityDefinitions``, one of them, or one of its navigations."""
        first = segments[0]
        params = dict(request.query_params)
        ctx = f"{base}/$metadata#EntityDefinitions"
        if first.args is None:
            if len(segments) > 1:
                raise ODataError(404, "0x80060888", "Resource not found.")
            rows = [entity_definition(e) for e in ENTITIES.values()]
            return json_response(
                {"@odata.context": ctx + _sel(params), "value": query_objects(rows, params)}
            )
        entity = find_entity(first.args)
        if len(segments) == 1:
            return _one_definition(entity, params, ctx)
        return _definition_part(entity, segments[1], params, f"{ctx}({first.args})")


def _one_definition(entity: Entity, params: dict[str, str], ctx: str) -> Response:
    """``EntityDefinitions(LogicalName='…')``, with ``$expand`` of Attributes and Keys."""
    obj = entity_definition(entity)
    expand = params.get("$expand", "")
    if "Attributes" in expand:
        obj["Attributes"] = [attribute_definition(entity, a) for a in entity.attributes.values()]
    if "Keys" in expand:
        obj["Keys"] = []
    picked = query_objects(
        [obj],
        {k: v for k, v in params.items() if k == "$select"},
        keep=("Attributes", "Keys"),
    )[0]
    return json_response({"@odata.context": f"{ctx}/$entity", **picked})


def _definition_part(entity: Entity, nav: Segment, params: dict[str, str], ctx: str) -> Response:
    """A navigation of one definition: its Attributes (or one), Keys, or relationships.
    ``ctx`` is the definition's context URL."""
    if nav.name == "Attributes":
        return _attributes(entity, nav, params, ctx)
    if nav.name == "Keys":
        return json_response({"@odata.context": f"{ctx}/Keys", "value": []})
    rels = {
        "ManyToOneRelationships": many_to_one(entity),
        "OneToManyRelationships": one_to_many(entity),
        "ManyToManyRelationships": [],
    }
    if nav.name in rels:
        return json_response(
            {
                "@odata.context": f"{ctx}/{nav.name}",
                "value": query_objects(rels[nav.name], params),
            }
        )
    raise ODataError(404, "0x80060888", f"Resource not found for the segment '{nav.name}'.")


def _attributes(entity: Entity, nav: Segment, params: dict[str, str], ctx: str) -> Response:
    """``…/Attributes`` (filtered and selected) or ``…/Attributes(LogicalName='…')``."""
    attrs = [attribute_definition(entity, a) for a in entity.attributes.values()]
    if nav.args is None:
        return json_response(
            {"@odata.context": f"{ctx}/Attributes", "value": query_objects(attrs, params)}
        )
    name = _key_arg(nav.args, "LogicalName")
    hit = [a for a in attrs if a["LogicalName"] == name or a["MetadataId"] == name]
    if not hit:
        raise ODataError(404, "0x80040217", f"Could not find attribute {name} on {entity.logical}.")
    return json_response({"@odata.context": f"{ctx}/Attributes/$entity", **hit[0]})


def _sel(params: dict[str, str]) -> str:
    return f"({params['$select']})" if "$select" in params else ""


def _key_arg(args: str, name: str) -> str:
    text = args.strip()
    if text.startswith(name + "="):
        text = text[len(name) + 1 :]
    return text.strip().strip("'")


def find_entity(args: str) -> Entity:
    key = _key_arg(args, "LogicalName")
    for e in ENTITIES.values():
        if key in (e.logical, metadata_id("entity", e.logical)):
            return e
    raise ODataError(404, "0x80040217", f"Could not find an entity with name or id {key}.")


def query_objects(
    rows: list[dict[str, Any]], params: dict[str, str], keep: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """``$filter``/``$select`` over metadata objects (an in-memory evaluator of the tree)."""
    for key in params:
        if key.startswith("$") and key not in ("$select", "$filter", "$expand"):
            raise bad_request(f"The query parameter {key} is not supported", QUERY_SYNTAX)
    if "$filter" in params:
        try:
            tree = parse_filter(params["$filter"])
            rows = [r for r in rows if _eval(tree, r) is True]
        except FilterError as exc:
            raise bad_request(str(exc), QUERY_SYNTAX) from exc
    if "$select" in params:
        names = [n.strip() for n in params["$select"].split(",") if n.strip()]
        known = set().union(*(r.keys() for r in rows)) if rows else set(names)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise bad_request(f"Could not find a property named '{unknown[0]}'.", QUERY_SYNTAX)
        rows = [
            {
                k: v
                for k, v in r.items()
                if k in names or k == "MetadataId" or k in keep or k.startswith("@")
            }
            for r in rows
        ]
    return rows


def _eval(node: Node, row: dict[str, Any]) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Path):
        value: Any = row
        for part in node.parts:
            if not isinstance(value, dict) or part not in value:
                raise FilterError(f"Could not find a property named '{part}'.")
            value = value[part]
        return value
    if isinstance(node, BoolOp):
        left, right = _eval(node.left, row) is True, _eval(node.right, row) is True
        return (left and right) if node.op == "and" else (left or right)
    if isinstance(node, Not):
        return _eval(node.operand, row) is not True
    if isinstance(node, Compare):
        a, b = _eval(node.left, row), _eval(node.right, row)
        if isinstance(a, str) and isinstance(b, str):
            a, b = a.lower(), b.lower()
        try:
            return (
                {"eq": a == b, "ne": a != b}.get(node.op)
                if node.op in ("eq", "ne")
                else {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[node.op]
            )
        except TypeError:
            return False
    if (
        isinstance(node, Call)
        and node.name in ("contains", "startswith", "endswith")
        and len(node.args) == 2
    ):
        a, b = _eval(node.args[0], row), _eval(node.args[1], row)
        if not isinstance(a, str) or not isinstance(b, str):
            return False
        a, b = a.lower(), b.lower()
        return {"contains": b in a, "startswith": a.startswith(b), "endswith": a.endswith(b)}[
            node.name
        ]
    raise FilterError("This $filter is not supported on metadata.")


def build_csdl(annotations: bool) -> str:
    """The ``$metadata`` document: entity types, operations, then the entity container
    (``annotations``: with the change-tracking capability of each set)."""
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">',
        '<edmx:Reference Uri="https://oasis-tcs.github.io/odata-vocabularies/vocabularies/'
        'Org.OData.Capabilities.V1.xml"><edmx:Include Namespace="Org.OData.Capabilities.V1"'
        ' Alias="Capabilities"/></edmx:Reference>',
        "<edmx:DataServices>",
        '<Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" '
        'xmlns="http://docs.oasis-open.org/odata/ns/edm">',
        '<EntityType Name="crmbaseentity" Abstract="true"/>',
        '<ComplexType Name="QueryBase" Abstract="true" OpenType="true"/>',
    ]
    for e in ENTITIES.values():
        out.extend(_csdl_entity_type(e))
    out.extend(_csdl_operations())
    out.append('<EntityContainer Name="System">')
    for e in ENTITIES.values():
        out.extend(_csdl_entity_set(e, annotations))
    out.extend(_csdl_imports())
    out.append("</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>")
    return "\n".join(out)


def _csdl_entity_type(e: Entity) -> list[str]:
    """One ``EntityType``: key, properties, single- and collection-valued navigations."""
    out = [
        f'<EntityType Name="{e.logical}" BaseType="mscrm.crmbaseentity">',
        f'<Key><PropertyRef Name="{e.key}"/></Key>',
    ]
    for a in e.attributes.values():
        extra = f' MaxLength="{a.max_length}"' if a.max_length and a.type == "string" else ""
        out.append(f'<Property Name="{a.value_name}" Type="{EDM[a.type]}"{extra}/>')
    for nav, attr, target in e.single_navs():
        out.append(
            f'<NavigationProperty Name="{nav}" Type="mscrm.{target}">'
            f'<ReferentialConstraint Property="{attr.value_name}" '
            f'ReferencedProperty="{ENTITIES[target].key}"/></NavigationProperty>'
        )
    for cnav in e.collection_navs.values():
        out.append(
            f'<NavigationProperty Name="{cnav.name}" '
            f'Type="Collection(mscrm.{cnav.child})" '
            f'Partner="{cnav.child_attr}_{e.logical}"/>'
        )
    out.append("</EntityType>")
    return out


def _csdl_operations() -> list[str]:
    """The functions and actions (with their response types), then the bound
    ``CreateMultiple``/``UpdateMultiple`` actions."""
    out = []
    for name, (kind, bound, params, result) in OPERATIONS.items():
        out.append(f'<ComplexType Name="{name}Response">')
        out.extend(f'<Property Name="{p}" Type="{t}"/>' for p, t in result)
        out.append("</ComplexType>")
        is_bound = "true" if bound else "false"
        out.append(f'<{kind} Name="{name}" IsBound="{is_bound}">')
        if bound:
            btype = (
                f"Collection(mscrm.{bound[11:-1]})"
                if bound.startswith("Collection(")
                else f"mscrm.{bound}"
            )
            out.append(f'<Parameter Name="entity" Type="{btype}" Nullable="false"/>')
        for p, t, nullable in params:
            out.append(f'<Parameter Name="{p}" Type="{t}" Nullable="{str(nullable).lower()}"/>')
        out.append(f'<ReturnType Type="mscrm.{name}Response" Nullable="false"/></{kind}>')
    for name in ("CreateMultiple", "UpdateMultiple"):
        out.append(
            f'<Action Name="{name}" IsBound="true"><Parameter Name="entityset" '
            f'Type="Collection(mscrm.crmbaseentity)" Nullable="false"/>'
            f'<Parameter Name="Targets" Type="Collection(mscrm.crmbaseentity)" '
            f'Nullable="false"/></Action>'
        )
    return out


def _csdl_entity_set(e: Entity, annotations: bool) -> list[str]:
    """One ``EntitySet`` with its navigation bindings (and change tracking, annotated)."""
    out = [f'<EntitySet Name="{e.set_name}" EntityType="Microsoft.Dynamics.CRM.{e.logical}">']
    for nav, _attr, target in e.single_navs():
        out.append(
            f'<NavigationPropertyBinding Path="{nav}" '
            f"Target={quoteattr(ENTITIES[target].set_name)}/>"
        )
    for cnav in e.collection_navs.values():
        out.append(
            f'<NavigationPropertyBinding Path="{cnav.name}" '
            f'Target="{ENTITIES[cnav.child].set_name}"/>'
        )
    if annotations and e.change_tracking:
        out.append(
            '<Annotation Term="Org.OData.Capabilities.V1.ChangeTracking"><Record>'
            '<PropertyValue Property="Supported" Bool="true"/></Record></Annotation>'
        )
    out.append("</EntitySet>")
    return out


def _csdl_imports() -> list[str]:
    """The unbound operations' imports into the container."""
    out = []
    for name, (kind, bound, _p, _r) in OPERATIONS.items():
        if bound is None:
            imp = "FunctionImport" if kind == "Function" else "ActionImport"
            ref = "Function" if kind == "Function" else "Action"
            out.append(f'<{imp} Name="{name}" {ref}="Microsoft.Dynamics.CRM.{name}"/>')
    return out
