"""The demo's HTTP side: a FastAPI app serving the static page (``tools/demo/static/``: plain
HTML / JS / CSS, nothing fetched from elsewhere, so it works offline) and a JSON API over a
:class:`~tools.demo.service.DemoService`:

- ``GET /api/info``: the model, whether points / boxes can be given, the example images;
- ``POST /api/image`` ``{image}``: checks that an upload decodes, returns its size;
- ``POST /api/segment`` ``{image | example, texts, semantic, points, box}``: one mask (PNG,
  0 / 255, as a data URL), one drawing of it over the image and one score per expression;
  with a no-target head, also ``no_target`` / ``no_target_score`` per expression (the page
  then says "no target (score 0.93)" instead of showing the drawing);
- ``GET /api/health``.

Every failure is answered (a readable message for a bad request, 500 otherwise) and the server
keeps serving.
"""
import logging
from pathlib import Path
from typing import Any, List, Optional

from tools.demo.payloads import DemoError
from tools.demo.service import DemoService

STATIC_DIR = Path(__file__).resolve().parent / 'static'

logger = logging.getLogger('mmevf.demo')


def create_app(service: DemoService):
    """The FastAPI app: the static page and the JSON API over ``service``."""
    from fastapi import FastAPI
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel

    class ImageRequest(BaseModel):
        image: Optional[str] = None

    class SegmentRequest(BaseModel):
        image: Optional[str] = None
        example: Optional[str] = None
        texts: List[Any] = []
        semantic: bool = False
        points: Optional[List[Any]] = None
        box: Optional[List[Any]] = None

    app = FastAPI(title='mmevf demo', docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service

    def error_response(error: Exception) -> JSONResponse:
        if isinstance(error, DemoError):
            return JSONResponse({'detail': str(error)}, status_code=error.status)
        logger.exception('request failed')
        return JSONResponse({'detail': f'internal error ({type(error).__name__}: {error}); '
                                       f'the server is still running'}, status_code=500)

    @app.get('/', include_in_schema=False)
    def index():
        return FileResponse(STATIC_DIR / 'index.html', media_type='text/html')

    @app.get('/api/health')
    def health():
        return {'status': 'ok', 'requests': service.requests}

    @app.get('/api/info')
    def info():
        return service.info()

    @app.get('/api/examples/{name}')
    def example(name: str):
        try:
            return FileResponse(service.example_path(name))
        except DemoError as error:
            return error_response(error)

    @app.post('/api/image')
    def check_image(request: ImageRequest):
        try:
            return service.check(request.image)
        except Exception as error:  # noqa: BLE001 -- every failure is answered, the server lives
            return error_response(error)

    @app.post('/api/segment')
    def segment(request: SegmentRequest):
        try:
            return service.segment(request.image, request.example, request.texts,
                                   request.semantic, request.points, request.box)
        except Exception as error:  # noqa: BLE001
            return error_response(error)

    app.mount('/static', StaticFiles(directory=STATIC_DIR), name='static')
    return app
