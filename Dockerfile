FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production

# WeasyPrint renders the PDF reports with pango; harfbuzz-subset makes it ~2.5x faster.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# collectstatic needs settings to import; these placeholders are never used at run time.
RUN SECRET_KEY=collectstatic-only-placeholder-value-that-is-long-enough-0123456789 \
    RESPONSE_SEAL_KEY=Oz1nXjPkPnoG7QTlvtJBPnnM8YATe-zS4a_o1yqIaUo \
    DATABASE_URL=postgres://build/none REDIS_URL=redis://build:6379/0 \
    python manage.py collectstatic --noinput \
    && useradd --system --uid 1000 balance360
USER balance360
EXPOSE 8000
CMD ["gunicorn", "-c", "config/gunicorn.py", "config.wsgi"]
