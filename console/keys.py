"""The console's application state, behind typed keys."""

from __future__ import annotations

import aiohttp
import asyncpg
from aiohttp import web

from console.config import Config
from console.flow import Flow

CONFIG = web.AppKey("console.config", Config)
POOL = web.AppKey("console.pool", asyncpg.Pool)
NOTIFICATIONS_POOL = web.AppKey("console.notifications_pool", asyncpg.Pool)
HTTP = web.AppKey("console.http", aiohttp.ClientSession)
FLOW = web.AppKey("console.flow", Flow)
SECRET = web.AppKey("console.secret", bytes)
