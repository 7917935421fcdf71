from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from surveys import services
from surveys.models import Cycle, Dimension, Item, Person, Questionnaire, Subject, Team


def _launched_cycles() -> QuerySet[Cycle]:
    """The cycles whose questionnaire version is in use, hence frozen: every one launched."""
    return Cycle.objects.exclude(status=Cycle.Status.DRAFT)


def _questionnaire_in_use(questionnaire: Questionnaire | None) -> bool:
    return questionnaire is not None and _launched_cycles().filter(questionnaire=questionnaire).exists()


class DimensionInline(admin.TabularInline):
    model = Dimension
    extra = 0
    fields = ["position", "side", "pair", "key", "name", "description"]

    def has_change_permission(self, request: HttpRequest, obj: Questionnaire | None = None) -> bool:
        return not _questionnaire_in_use(obj) and super().has_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Questionnaire | None = None) -> bool:
        return not _questionnaire_in_use(obj) and super().has_add_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Questionnaire | None = None) -> bool:
        return not _questionnaire_in_use(obj) and super().has_delete_permission(request, obj)


@admin.register(Questionnaire)
class QuestionnaireAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "created_at"]
    inlines = [DimensionInline]
    actions = ["create_next_version"]

    def has_change_permission(self, request: HttpRequest, obj: Questionnaire | None = None) -> bool:
        # A launched cycle keeps the exact items it asked: its version is frozen here too.
        return not _questionnaire_in_use(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Questionnaire | None = None) -> bool:
        return obj is None or (not obj.cycles.exists() and super().has_delete_permission(request, obj))

    @admin.action(description="Create the next version (copy, then edit the copy)")
    def create_next_version(self, request: HttpRequest, queryset: QuerySet[Questionnaire]) -> None:
        for questionnaire in queryset:
            copy = services.questionnaire_copy(questionnaire=questionnaire)
            self.message_user(request, f"Created {copy}.", messages.SUCCESS)


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["code", "text", "dimension"]
    list_filter = ["dimension__questionnaire", "dimension__side"]
    list_select_related = ["dimension__questionnaire"]
    search_fields = ["code", "text"]

    def has_change_permission(self, request: HttpRequest, obj: Item | None = None) -> bool:
        in_use = obj is not None and _questionnaire_in_use(obj.dimension.questionnaire)
        return not in_use and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Item | None = None) -> bool:
        in_use = obj is not None and _questionnaire_in_use(obj.dimension.questionnaire)
        return not in_use and super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # "Delete selected" asks for no object's permission: items of a version in use would go with it.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # A new item (or one moved) only into a version no launched cycle uses: the others are frozen.
        if db_field.name == "dimension":
            kwargs["queryset"] = Dimension.objects.exclude(questionnaire__cycles__in=_launched_cycles()).select_related(
                "questionnaire"
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class PersonInline(admin.TabularInline):
    model = Person
    fk_name = "team"
    extra = 0
    fields = ["name", "email", "reports_to"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "manager", "created_at"]
    search_fields = ["name"]
    inlines = [PersonInline]


@admin.register(Cycle)
class CycleAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "status", "deadline", "anonymity_min"]
    list_filter = ["status"]
    list_select_related = ["team"]
    search_fields = ["name", "team__name"]

    def get_readonly_fields(self, request: HttpRequest, obj: Cycle | None = None) -> Any:
        # The status moves only through the services (launch, close), which do what each step
        # promises: a close rewrites every invitation and unseals the answers. And a launched
        # cycle keeps its questionnaire version, which the survey keeps per process.
        # Nor does its anonymity minimum, its comment minimum or its team change here once past a
        # draft: a k lowered on an open or closed cycle would show (or re-run reports on) pools
        # smaller than its raters were promised; the cycle's own form and API only raise them.
        fields = [*super().get_readonly_fields(request, obj), "status", "launched_at", "closed_at"]
        if obj is not None and obj.status != Cycle.Status.DRAFT:
            fields += ["questionnaire", "anonymity_min", "comment_min", "team"]
        return fields

    def has_delete_permission(self, request: HttpRequest, obj: Cycle | None = None) -> bool:
        # Only a cycle never launched goes (as ``cycle_delete`` allows): one that was keeps its
        # questionnaire version in use, hence frozen, for good.
        if obj is not None and obj.status not in (Cycle.Status.DRAFT, Cycle.Status.NOMINATING):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # "Delete selected" asks for no object's permission.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(Subject)
class SubjectAdmin(admin.ModelAdmin):
    list_display = ["person", "cycle"]
    list_select_related = ["person", "cycle"]
