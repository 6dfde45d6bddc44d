"""A fingerprint of schema ``pgque``'s catalog, to tell whether two installs are the same.

Covers what an install defines: relations (kind, storage options, privileges),
columns (type, NOT NULL, default, identity), constraints, indexes,
inheritance, sequences (type, bounds, ownership), routines (full definition,
arguments, result, security, configuration, privileges), types, triggers,
comments, the schema's privileges, the API roles' memberships, and the rows
an install seeds. Everything is rendered as text by the server and sorted.

Two normalizations keep representation apart from meaning: privileges are
compared with NULL read as the default (``acldefault``), since an explicit
owner-only ACL and NULL grant the same; and constraint definitions are
compared without parentheses, since a dump and restore flattens nested
``AND`` groups (``(a AND b) AND c`` comes back as ``a AND b AND c``).
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from tests._pg import Sql

NS = "(select oid from pg_namespace where nspname = 'pgque')"

QUERIES: dict[str, str] = {
    "schema": """
        select array(select a::text from unnest(coalesce(nspacl, acldefault('n'::"char", nspowner))) a order by 1)
          from pg_namespace where nspname = 'pgque'
    """,
    "relations": f"""
        select relname, relkind::text, relpersistence::text, reloptions::text,
               (select reloptions::text from pg_class t where t.oid = c.reltoastrelid),
               array(select a::text from unnest(coalesce(relacl, acldefault(
                   (case when relkind = 'S' then 's' else 'r' end)::"char", relowner))) a order by 1)
          from pg_class c where relnamespace = {NS} and relkind <> 't' order by 1
    """,
    "columns": f"""
        select c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text,
               array(select x::text from unnest(a.attacl) x order by 1)
          from pg_attribute a join pg_class c on c.oid = a.attrelid
          left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
         where c.relnamespace = {NS} and a.attnum > 0 and not a.attisdropped order by 1, 2
    """,
    "constraints": f"""
        select conrelid::regclass::text, contypid::regtype::text, conname,
               translate(pg_get_constraintdef(oid), '()', '')
          from pg_constraint where connamespace = {NS} and contype <> 'n' order by 1, 2, 3
    """,
    "indexes": f"""
        select i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
          from pg_index i join pg_class c on c.oid = i.indexrelid where c.relnamespace = {NS} order by 1
    """,
    "inheritance": f"""
        select inhrelid::regclass::text, inhparent::regclass::text, inhseqno from pg_inherits
         where inhrelid in (select oid from pg_class where relnamespace = {NS}) order by 1, 3
    """,
    "sequences": f"""
        select s.seqrelid::regclass::text, format_type(s.seqtypid, null), s.seqstart, s.seqincrement,
               s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
               (select d.refobjid::regclass::text || '.' || d.refobjsubid from pg_depend d
                 where d.classid = 'pg_class'::regclass and d.objid = s.seqrelid
                   and d.refclassid = 'pg_class'::regclass and d.deptype in ('a', 'i'))
          from pg_sequence s join pg_class c on c.oid = s.seqrelid where c.relnamespace = {NS} order by 1
    """,
    "routines": f"""
        select p.oid::regprocedure::text, p.prokind::text, pg_get_function_arguments(p.oid),
               pg_get_function_result(p.oid), p.prosecdef, p.proisstrict, p.provolatile::text,
               p.proparallel::text, p.proleakproof, p.procost, p.prorows, p.proconfig::text,
               array(select a::text from unnest(coalesce(p.proacl, acldefault('f'::"char", p.proowner))) a order by 1),
               case when p.prokind in ('f', 'p', 'w') then pg_get_functiondef(p.oid) end
          from pg_proc p where p.pronamespace = {NS} order by 1
    """,
    "types": f"""
        select t.typname, t.typtype::text,
               array(select a::text from unnest(coalesce(t.typacl, acldefault('T'::"char", t.typowner))) a order by 1)
          from pg_type t where t.typnamespace = {NS}
           and (t.typtype <> 'c' or (select relkind from pg_class where oid = t.typrelid) = 'c')
           and t.typelem = 0 order by 1
    """,
    "triggers": f"""
        select tgrelid::regclass::text, tgname, pg_get_triggerdef(t.oid) from pg_trigger t
          join pg_class c on c.oid = t.tgrelid where c.relnamespace = {NS} and not t.tgisinternal order by 1, 2
    """,
    "comments": f"""
        select d.classoid::regclass::text, d.objsubid, d.description from pg_description d
         where (d.classoid = 'pg_class'::regclass and d.objoid in (select oid from pg_class where relnamespace = {NS}))
            or (d.classoid = 'pg_proc'::regclass and d.objoid in (select oid from pg_proc where pronamespace = {NS}))
            or (d.classoid = 'pg_namespace'::regclass and d.objoid = {NS})
         order by 1, 2, 3
    """,
    "memberships": """
        select r.rolname, m.rolname from pg_auth_members am
          join pg_roles r on r.oid = am.roleid join pg_roles m on m.oid = am.member
         where r.rolname like 'pgque\\_%' and m.rolname like 'pgque\\_%' order by 1, 2
    """,
    "config": "select singleton, ticker_job_id, maint_job_id, scheduler, tick_period_ms from pgque.config",
}


def fingerprint(sql: Sql, rows: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    """The catalog of schema ``pgque`` (and, with ``rows``, its seed rows and row counts) as comparable data."""
    has_config = sql.one("select to_regclass('pgque.config') is not null")
    found = {name: sql.rows(query) for name, query in QUERIES.items() if name != "config" or has_config}
    if not rows:
        found.pop("config", None)
        return found
    tables = sql.col(f"select relname from pg_class where relnamespace = {NS} and relkind = 'r' order by 1")
    found["row counts"] = [(table, sql.one(f'select count(*) from pgque."{table}"')) for table in tables]
    return found


def differing(left: dict[str, Any], right: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Per section, the entries only in ``left`` and only in ``right`` (for readable failures)."""
    result = {}
    for section in left.keys() | right.keys():
        a, b = left.get(section, []), right.get(section, [])
        if a != b:
            result[section] = ([x for x in a if x not in b], [x for x in b if x not in a])
    return result


def committed_snapshot() -> str:
    """The ``schema.sql`` shipped with the engine's revisions."""
    return (files("sa_pgque") / "migrations" / "schema.sql").read_text(encoding="utf-8")
