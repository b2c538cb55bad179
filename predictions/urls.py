from django.contrib.auth import views as auth_views
from django.urls import path

from predictions import patient_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("analyse", views.analyse, name="analyse"),
    path("results/<str:message_id>", views.result, name="result"),
    path("results/<str:message_id>/delete", patient_views.result_delete, name="result-delete"),
    path("results/<str:message_id>/label", patient_views.result_label, name="result-label"),
    path("history", views.history, name="history"),
    path("history/delete", patient_views.history_delete, name="history-delete"),
    path("history/forget", patient_views.forget_device, name="forget-device"),
    path("privacy", patient_views.privacy, name="privacy"),
    path("favicon.ico", patient_views.favicon, name="favicon"),
    path("accounts/login/", patient_views.SignInView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", patient_views.signup, name="signup"),
    # Django's password-reset views, with our templates (templates/registration/).
    path(
        "accounts/password_reset/",
        auth_views.PasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "accounts/password_reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]
